"""Alert channels as typed settings (field-level errors), which of their fields are secret, and how
an alert becomes the text each vendor expects."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlparse

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

MASK = "********"
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+$")


class ChannelKind(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"
    SLACK = "slack"
    DINGTALK = "dingtalk"
    WECOM = "wecom"
    LARK = "lark"


def _http_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Fields whose values are never shown by the API nor logged.
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()

    def masked(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        for name in self.SECRET_FIELDS:
            if out.get(name):
                out[name] = mask_url(out[name]) if name.endswith("url") else MASK
        return out

    def secrets(self) -> list[str]:
        return [str(v) for v in (getattr(self, n) for n in self.SECRET_FIELDS) if v]


def mask_url(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.hostname}{':' + str(parsed.port) if parsed.port else ''}/{MASK}"


class EmailConfig(_Config):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("password",)
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["plain", "starttls", "ssl"] = "starttls"
    username: str | None = None
    password: str | None = None
    sender: str
    recipients: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=10, gt=0, le=120)

    @field_validator("sender")
    @classmethod
    def _sender(cls, v: str) -> str:
        if not _EMAIL.match(v):
            raise ValueError(f"{v!r} is not an email address")
        return v

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, v: list[str]) -> list[str]:
        for address in v:
            if not _EMAIL.match(address):
                raise ValueError(f"{address!r} is not an email address")
        return v


class WebhookConfig(_Config):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("secret",)
    url: HttpUrl
    secret: str | None = Field(default=None, min_length=1, description="Signs the body: X-Streampilot-Signature")
    timeout_s: float = Field(default=10, gt=0, le=120)


class SlackConfig(_Config):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("webhook_url",)
    webhook_url: HttpUrl
    timeout_s: float = Field(default=10, gt=0, le=120)


class DingTalkConfig(_Config):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("webhook_url", "secret")
    webhook_url: HttpUrl = Field(description="The robot's URL with its access_token")
    secret: str = Field(min_length=1, description="The robot's signing secret (SEC...)")
    timeout_s: float = Field(default=10, gt=0, le=120)


class WeComConfig(_Config):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("webhook_url",)
    webhook_url: HttpUrl = Field(description="The robot's URL with its key")
    timeout_s: float = Field(default=10, gt=0, le=120)


class LarkConfig(_Config):
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("webhook_url", "secret")
    webhook_url: HttpUrl
    secret: str = Field(min_length=1, description="The bot's signature verification secret")
    timeout_s: float = Field(default=10, gt=0, le=120)


CONFIGS: dict[ChannelKind, type[_Config]] = {
    ChannelKind.EMAIL: EmailConfig,
    ChannelKind.WEBHOOK: WebhookConfig,
    ChannelKind.SLACK: SlackConfig,
    ChannelKind.DINGTALK: DingTalkConfig,
    ChannelKind.WECOM: WeComConfig,
    ChannelKind.LARK: LarkConfig,
}


class Message(BaseModel):
    """One alert, rendered once and formatted per channel."""

    title: str
    reason: str
    app: str
    state: str | None
    previous_state: str | None
    at: datetime
    cluster: str | None
    job_id: str | None
    summary: str
    numbers: dict[str, Any] = Field(default_factory=dict)
    exception: str | None = None
    link: str | None = None
    suppressed: int = 0

    def lines(self) -> list[str]:
        out = [self.summary]
        state = self.state or "-"
        if self.previous_state and self.previous_state != self.state:
            state = f"{self.previous_state} → {state}"
        out.append(f"State: {state}")
        out.append(f"When: {self.at.strftime('%Y-%m-%d %H:%M:%S UTC')}")
        if self.cluster:
            out.append(f"Cluster: {self.cluster}")
        if self.job_id:
            out.append(f"Job: {self.job_id}")
        if self.exception:
            out.append(f"Latest exception: {self.exception}")
        if self.suppressed:
            out.append(
                f"({self.suppressed} similar alert{'s' if self.suppressed > 1 else ''} suppressed since "
                "the last message)"
            )
        if self.link:
            out.append(f"Console: {self.link}")
        return out

    def text(self) -> str:
        return "\n".join([self.title, *self.lines()])

    def markdown(self) -> str:
        return "\n\n".join([f"### {self.title}", *self.lines()])
