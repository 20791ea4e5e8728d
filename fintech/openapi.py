"""OpenAPI pieces every app's views share: the problem-details schema and per-status error responses.

An operation lists every status it can answer; each error status documents
the RFC 9457 shape (`fintech.problems`) and the stable codes it may carry,
so a client can generate its error handling from the schema.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from fintech.problems import PROBLEM_CONTENT_TYPE


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, with the platform's stable `code` and the request id."""

    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField(help_text="stable; clients branch on it")
    instance = serializers.CharField(required=False)
    request_id = serializers.CharField(required=False, allow_null=True)
    errors = FieldErrorSerializer(many=True, required=False, help_text="field validation errors (400)")


def problem(description: str) -> OpenApiResponse:
    """One documented error status: what it means and which codes it carries."""
    return OpenApiResponse(response=ProblemSerializer, description=f"{PROBLEM_CONTENT_TYPE}: {description}")


def problems(**by_status: str) -> dict[int, OpenApiResponse]:
    """`problems(s404="account_not_found", ...)` -> {404: problem(...)}; keys are `s` + the status."""
    return {int(key.lstrip("s")): problem(text) for key, text in by_status.items()}


_RATE_LIMIT_HEADERS = {
    "RateLimit-Policy": {
        "description": "The rate-limit policies this request counted against (draft-ietf-httpapi-ratelimit-headers-10):"
        ' `"<policy>";q=<requests>;w=<seconds>`, the closest to empty first (ADR 0017).',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'What is left of each: `"<policy>";r=<requests left now>;t=<seconds until full again>`.',
        "schema": {"type": "string"},
    },
}


def _merge(responses: dict, status: str, description: str, headers: dict, problem_ref: dict) -> None:
    """Add the limiter's answer to a status, keeping what the operation already documents for it."""
    response = responses.setdefault(
        status, {"description": "", "content": {PROBLEM_CONTENT_TYPE: {"schema": problem_ref}}}
    )
    response["description"] = "; ".join(part for part in (response.get("description"), description) if part)
    response.setdefault("headers", {}).update(headers)


def rate_limit_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation documents the limiter's answers (issue 13).

    The RateLimit fields on every response, and the 429 `rate_limited` (with
    Retry-After) and 503 `rate_limit_unavailable` problems, which any
    operation can answer before its view runs.
    """
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    if "Problem" not in result.get("components", {}).get("schemas", {}):
        return result
    retry_after = {"description": "Seconds until a request can pass.", "schema": {"type": "integer"}}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for response in operation["responses"].values():
                response.setdefault("headers", {}).update(_RATE_LIMIT_HEADERS)
            _merge(
                operation["responses"], "429",
                f"{PROBLEM_CONTENT_TYPE}: rate_limited (the problem names the spent `policy`)",
                {"Retry-After": retry_after, **_RATE_LIMIT_HEADERS}, problem_ref,
            )  # fmt: skip
            _merge(
                operation["responses"], "503",
                f"{PROBLEM_CONTENT_TYPE}: rate_limit_unavailable (limits could not be counted; money-moving and"
                " authentication calls fail closed)",
                {"Retry-After": retry_after}, problem_ref,
            )  # fmt: skip
    return result


__all__ = ["ProblemSerializer", "inline_serializer", "problem", "problems", "rate_limit_responses"]
