"""A transparent, rule-based risk score for API calls (0 to 100) and compliance flags.

Rules, not a model: each contributes a fixed weight that a compliance officer
can read and challenge. Anomaly detection on top of these records comes later.
"""

from __future__ import annotations

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PII_ENDPOINT_MARKERS = ("cards", "detokenize", "me", "customers", "national-id")
MONEY_ENDPOINT_MARKERS = ("transfers", "holds", "credit", "accounts")


def assess_api_call(*, request, status: int, endpoint: str) -> tuple[int, list[str]]:
    score = 0
    flags: list[str] = []
    parts = set(endpoint.strip("/").replace("<", "/").replace(">", "/").split("/"))
    if status in (401, 403):
        score += 40
        flags.append("access_denied")
    elif status >= 500 or status >= 400:
        score += 10
    if request.method in WRITE_METHODS:
        score += 10
    if parts & set(PII_ENDPOINT_MARKERS):
        score += 20
        flags.append("pii_access")
    if parts & set(MONEY_ENDPOINT_MARKERS) and request.method in WRITE_METHODS:
        score += 10
        flags.append("money_movement")
    return min(score, 100), flags
