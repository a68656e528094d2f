"""Request signatures exactly as each vendor documents them."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk robot: HMAC-SHA256 keyed by the secret over "<timestamp ms>\\n<secret>", base64, URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


def lark_sign(secret: str, timestamp_s: int) -> str:
    """Lark/Feishu bot: HMAC-SHA256 keyed by "<timestamp s>\\n<secret>" over an empty message, base64."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def webhook_signature(secret: str, timestamp_s: int, body: bytes) -> str:
    """Our generic webhook: "sha256=" + hex HMAC-SHA256 keyed by the secret over "<timestamp>.<body>"."""
    mac = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()
