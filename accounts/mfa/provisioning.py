"""What a person sees when enrolling: the otpauth URI as a QR code, the secret, recovery codes.

Recovery codes are stored as hashes (house rule 8: secrets are stored as
hashes, looked up by checksum), not in clear as django-otp's `StaticToken`
would by default. A code is 16 random base32 characters (80 bits), so an
unsalted SHA-256 cannot be reversed by guessing; the stored value is the first
16 base32 characters of the digest (80 bits, the column holds 16), and the
lookup stays an indexed equality on `StaticToken.token`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import quote, urlencode

import qrcode
import qrcode.image.svg
from django.conf import settings
from django_otp.plugins.otp_totp.models import TOTPDevice

RECOVERY_CODE_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # base32, lower case
RECOVERY_CODE_LENGTH = 16
RECOVERY_CODE_GROUP = 4
MAX_CODE_INPUT_LENGTH = 64
_RECOVERY_CODE = re.compile(rf"^[a-z2-7]{{{RECOVERY_CODE_LENGTH}}}$")
_TOTP_CODE = re.compile(r"^\d{6}$")
DEFAULT_ISSUER = "Fintech"


def issuer() -> str:
    return (getattr(settings, "OTP_TOTP_ISSUER", None) or DEFAULT_ISSUER).replace(":", "")


def totp_secret_base32(device: TOTPDevice) -> str:
    """The secret as authenticator apps take it for manual entry, without padding."""
    return base64.b32encode(device.bin_key).decode("ascii").rstrip("=")


def totp_secret_grouped(device: TOTPDevice) -> str:
    secret = totp_secret_base32(device)
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def otpauth_uri(device: TOTPDevice, *, account_label: str) -> str:
    """Key URI Format (Google Authenticator wiki): otpauth://totp/Issuer:account?secret=...&issuer=..."""
    name = issuer()
    params = urlencode({
        "secret": totp_secret_base32(device),
        "issuer": name,
        "algorithm": "SHA1",
        "digits": device.digits,
        "period": device.step,
    })  # fmt: skip
    return f"otpauth://totp/{quote(f'{name}:{account_label}')}?{params}"


def qr_code_data_uri(text: str) -> str:
    """An SVG QR code (white background, so dark themes cannot hide it) as a data: URI for an <img>."""
    image = qrcode.make(
        text,
        image_factory=qrcode.image.svg.SvgPathFillImage,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=10,
        border=4,
    )
    svg = image.to_string(encoding="unicode")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def totp_code_normalise(code: str) -> str | None:
    """Six digits, spaces allowed ('123 456'); None for anything else."""
    compact = re.sub(r"\s", "", (code or "")[:MAX_CODE_INPUT_LENGTH])
    return compact if _TOTP_CODE.match(compact) else None


def recovery_code_generate() -> str:
    return "".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))


def recovery_code_display(code: str) -> str:
    """'abcdefghijklmnop' -> 'abcd-efgh-ijkl-mnop'."""
    return "-".join(code[i : i + RECOVERY_CODE_GROUP] for i in range(0, len(code), RECOVERY_CODE_GROUP))


def recovery_code_normalise(code: str) -> str | None:
    """Accepts any casing, with or without dashes and spaces; None if it cannot be a recovery code."""
    compact = re.sub(r"[\s-]", "", (code or "")[:MAX_CODE_INPUT_LENGTH]).lower()
    return compact if _RECOVERY_CODE.match(compact) else None


def recovery_code_hash(code: str) -> str:
    """The value stored in `StaticToken.token` for a normalised recovery code."""
    digest = hashlib.sha256(f"fintech-recovery-code:{code}".encode("ascii")).digest()
    return base64.b32encode(digest).decode("ascii")[:RECOVERY_CODE_LENGTH].lower()
