"""Sending one rendered alert to one channel; every outcome is a typed result, never an exception.

A result is temporary (worth retrying: no answer, timeout, 5xx, 429, a vendor's rate limit) or
permanent (a 4xx, a refused credential). Secrets never appear in a result's detail.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
import httpx

from streampilot.alerts.signing import dingtalk_sign, lark_sign, webhook_signature
from streampilot.domain.channels import (
    MASK,
    DingTalkConfig,
    EmailConfig,
    LarkConfig,
    Message,
    SlackConfig,
    WebhookConfig,
    WeComConfig,
    _Config,
)

# Vendor error codes that mean "slow down", i.e. retry later.
RATE_LIMIT_CODES = {130101, 45009, 11232, 9499}


@dataclass(frozen=True)
class SendResult:
    ok: bool
    temporary: bool
    status: int | None
    detail: str
    retry_after_s: float | None = None


def _scrub(text: str, config: _Config) -> str:
    for secret in config.secrets():
        text = text.replace(secret, MASK)
    return text[:1000]


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _classify(resp: httpx.Response, vendor_code_key: str | None) -> SendResult:
    """The outcome from the status (and a chat vendor's error code), never the answer's body: a channel
    pointed at an internal address must not make streampilot read that address out to its users."""
    status = f"HTTP {resp.status_code}"
    if resp.status_code == 429:
        return SendResult(False, True, 429, f"rate limited ({status})", _retry_after(resp))
    if resp.status_code >= 500:
        return SendResult(False, True, resp.status_code, f"receiver error ({status})", _retry_after(resp))
    if resp.status_code >= 400:
        return SendResult(False, False, resp.status_code, f"refused ({status})")
    if vendor_code_key is not None:
        try:
            code = int(resp.json().get(vendor_code_key, 0))
        except (ValueError, AttributeError, TypeError):
            return SendResult(
                False, True, resp.status_code, f"not the vendor's answer ({status}, no {vendor_code_key})"
            )
        if code != 0:
            return SendResult(False, code in RATE_LIMIT_CODES, resp.status_code, f"vendor error {code} ({status})")
    return SendResult(True, False, resp.status_code, f"delivered ({status})")


async def _post(
    http: httpx.AsyncClient, url: str, config: _Config, timeout: float, vendor_code_key: str | None, **kw: object
) -> SendResult:
    try:
        resp = await http.post(url, timeout=timeout, **kw)  # type: ignore[arg-type]
    except httpx.TimeoutException:
        return SendResult(False, True, None, f"no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        return SendResult(False, True, None, _scrub(f"{type(exc).__name__}: {exc}", config))
    result = _classify(resp, vendor_code_key)
    return SendResult(result.ok, result.temporary, result.status, _scrub(result.detail, config), result.retry_after_s)


async def send_webhook(http: httpx.AsyncClient, c: WebhookConfig, m: Message) -> SendResult:
    body = json.dumps(
        {
            "title": m.title,
            "reason": m.reason,
            "app": m.app,
            "state": m.state,
            "previous_state": m.previous_state,
            "at": m.at.isoformat(),
            "cluster": m.cluster,
            "job_id": m.job_id,
            "summary": m.summary,
            "numbers": m.numbers,
            "exception": m.exception,
            "suppressed": m.suppressed,
            "link": m.link,
            "text": m.text(),
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    if c.secret:
        ts = int(time.time())
        headers["X-Streampilot-Timestamp"] = str(ts)
        headers["X-Streampilot-Signature"] = webhook_signature(c.secret, ts, body)
    return await _post(http, c.url, c, c.timeout_s, None, content=body, headers=headers)


async def send_slack(http: httpx.AsyncClient, c: SlackConfig, m: Message) -> SendResult:
    return await _post(http, c.webhook_url, c, c.timeout_s, None, json={"text": m.text()})


async def send_dingtalk(http: httpx.AsyncClient, c: DingTalkConfig, m: Message) -> SendResult:
    ts = int(time.time() * 1000)
    sep = "&" if "?" in c.webhook_url else "?"
    url = f"{c.webhook_url}{sep}timestamp={ts}&sign={dingtalk_sign(c.secret, ts)}"
    payload = {"msgtype": "markdown", "markdown": {"title": m.title, "text": m.markdown()}}
    return await _post(http, url, c, c.timeout_s, "errcode", json=payload)


async def send_wecom(http: httpx.AsyncClient, c: WeComConfig, m: Message) -> SendResult:
    payload = {"msgtype": "markdown", "markdown": {"content": m.markdown()}}
    return await _post(http, c.webhook_url, c, c.timeout_s, "errcode", json=payload)


async def send_lark(http: httpx.AsyncClient, c: LarkConfig, m: Message) -> SendResult:
    ts = int(time.time())
    payload = {"timestamp": str(ts), "sign": lark_sign(c.secret, ts), "msg_type": "text", "content": {"text": m.text()}}
    return await _post(http, c.webhook_url, c, c.timeout_s, "code", json=payload)


async def send_email(c: EmailConfig, m: Message) -> SendResult:
    mail = EmailMessage()
    mail["Subject"] = f"[streampilot] {m.title}"
    mail["From"] = c.sender
    mail["To"] = ", ".join(c.recipients)
    mail.set_content("\n".join(m.lines()))
    try:
        await aiosmtplib.send(
            mail,
            hostname=c.host,
            port=c.port,
            username=c.username,
            password=c.password,
            use_tls=c.security == "ssl",
            start_tls=c.security == "starttls",
            timeout=c.timeout_s,
        )
    except aiosmtplib.SMTPResponseException as exc:
        temporary = 400 <= exc.code < 500
        return SendResult(False, temporary, exc.code, _scrub(f"SMTP {exc.code}: {exc.message}", c))
    except aiosmtplib.SMTPException as exc:
        return SendResult(False, True, None, _scrub(f"{type(exc).__name__}: {exc}", c))
    except OSError as exc:
        return SendResult(False, True, None, _scrub(f"{type(exc).__name__}: {exc}", c))
    return SendResult(True, False, 250, f"accepted for {len(c.recipients)} recipient(s)")


async def send(http: httpx.AsyncClient, config: _Config, message: Message) -> SendResult:
    if isinstance(config, EmailConfig):
        return await send_email(config, message)
    if isinstance(config, WebhookConfig):
        return await send_webhook(http, config, message)
    if isinstance(config, SlackConfig):
        return await send_slack(http, config, message)
    if isinstance(config, DingTalkConfig):
        return await send_dingtalk(http, config, message)
    if isinstance(config, WeComConfig):
        return await send_wecom(http, config, message)
    if isinstance(config, LarkConfig):
        return await send_lark(http, config, message)
    raise TypeError(f"no sender for {type(config).__name__}")
