"""Alert channels: configured once (validated per kind), referenced by apps, tested on demand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from pydantic import ValidationError

from streampilot.alerts.senders import SendResult, send
from streampilot.domain.access import Role
from streampilot.domain.channels import CONFIGS, MASK, ChannelKind, Message, _Config
from streampilot.domain.errors import FieldProblem, SpecError
from streampilot.services import access
from streampilot.services.context import Context
from streampilot.services.errors import Conflict, NotFound
from streampilot.services.secrets import PREFIX, SecretBox
from streampilot.store.alerts import AlertRepository
from streampilot.store.orm import Alert, AlertChannel


def parse_config(kind: str, raw: dict[str, Any]) -> _Config:
    try:
        channel_kind = ChannelKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in ChannelKind)
        raise SpecError.one("kind", f"unknown channel kind {kind!r}; use one of {kinds}") from None
    try:
        return CONFIGS[channel_kind].model_validate(raw)
    except ValidationError as exc:
        raise SpecError(
            [
                FieldProblem(".".join(["config", *(str(p) for p in e["loc"])]), e["msg"].removeprefix("Value error, "))
                for e in exc.errors()
            ]
        ) from None


def open_config(channel: AlertChannel, box: SecretBox) -> _Config:
    """A channel's configuration with its secrets decrypted (stored sealed; older plain rows read as they are)."""
    cls = CONFIGS[ChannelKind(channel.kind)]
    raw = dict(channel.config)
    for name in cls.SECRET_FIELDS:
        if isinstance(raw.get(name), str):
            raw[name] = box.open(raw[name])
    return cls.model_validate(raw)


def stored_config(config: _Config, box: SecretBox) -> dict[str, Any]:
    """What the database keeps of a configuration: its secrets (passwords, keys, webhook URLs) sealed."""
    out = config.model_dump(mode="json")
    for name in config.SECRET_FIELDS:
        if out.get(name):
            out[name] = box.seal(str(out[name]))
    return out


@dataclass
class ChannelService:
    ctx: Context

    async def list_channels(self) -> list[AlertChannel]:
        """The alert channels of the caller's teams."""
        q = sa.select(AlertChannel).order_by(AlertChannel.id)
        teams = access.team_filter()
        if teams is not None:
            q = q.where(AlertChannel.team_id.in_(teams))
        async with self.ctx.sessions() as s:
            return list((await s.execute(q)).scalars())

    async def get(self, channel_id: int, need: Role = Role.VIEWER, doing: str = "") -> AlertChannel:
        async with self.ctx.sessions() as s:
            channel = await s.get(AlertChannel, channel_id)
        missing = f"no alert channel with id {channel_id}"
        if channel is None:
            raise NotFound(missing)
        access.require(channel.team_id, need, doing or f"alert channel {channel.name!r}", missing)
        return channel

    async def create(self, name: str, kind: str, raw: dict[str, Any], team_id: int | None = None) -> AlertChannel:
        config = parse_config(kind, raw)
        async with self.ctx.sessions() as s, s.begin():
            team = await access.team_for_new(s, team_id, "alert channels")
            if (await s.execute(sa.select(AlertChannel.id).where(AlertChannel.name == name))).first():
                raise Conflict(f"an alert channel named {name!r} already exists; choose another name")
            channel = AlertChannel(team_id=team, name=name, kind=kind, config=stored_config(config, self.ctx.secrets))
            s.add(channel)
            await s.flush()
            access.audit(s, "create", "alert_channel", channel.id, name=name, team_id=team, diff=config.masked())
            return channel

    async def update(self, channel_id: int, name: str | None, raw: dict[str, Any] | None) -> AlertChannel:
        channel = await self.get(channel_id, Role.DEVELOPER)
        merged = open_config(channel, self.ctx.secrets).model_dump(mode="json")
        for key, value in (raw or {}).items():
            if value != MASK:  # a masked secret sent back unchanged keeps its stored value
                merged[key] = value
        config = parse_config(channel.kind, merged)
        async with self.ctx.sessions() as s, s.begin():
            row = await s.get(AlertChannel, channel_id)
            assert row is not None
            if name and name != row.name:
                if (await s.execute(sa.select(AlertChannel.id).where(AlertChannel.name == name))).first():
                    raise Conflict(f"an alert channel named {name!r} already exists; choose another name")
                row.name = name
            row.config = stored_config(config, self.ctx.secrets)
            diff = access.changes(
                {"name": channel.name, **open_config(channel, self.ctx.secrets).masked()},
                {"name": row.name, **config.masked()},
            )
            access.audit(s, "update", "alert_channel", channel_id, name=row.name, team_id=row.team_id, diff=diff)
            return row

    async def delete(self, channel_id: int) -> None:
        channel = await self.get(channel_id, Role.DEVELOPER)
        async with self.ctx.sessions() as s, s.begin():
            await s.execute(sa.delete(AlertChannel).where(AlertChannel.id == channel_id))
            access.audit(s, "delete", "alert_channel", channel_id, name=channel.name, team_id=channel.team_id)

    async def test(self, channel_id: int) -> SendResult:
        channel = await self.get(channel_id, Role.OPERATOR, "send a test message through this channel")
        config = open_config(channel, self.ctx.secrets)
        message = Message(
            title=f"streampilot test message for channel {channel.name!r}",
            reason="test",
            app="-",
            state=None,
            previous_state=None,
            at=datetime.now(UTC),
            cluster=None,
            job_id=None,
            summary="If you can read this, alerts reach this channel.",
        )
        async with httpx.AsyncClient() as http:
            return await send(http, config, message)

    async def deliveries(self, channel_id: int) -> list[dict[str, Any]]:
        """The channel's newest deliveries, each with its attempts."""
        await self.get(channel_id)
        return await AlertRepository(self.ctx.sessions).deliveries_to(channel_id)

    async def alerts(self, app_id: int | None, limit: int) -> list[tuple[Alert, list[dict[str, Any]]]]:
        """The newest alerts (of one app, or all the caller sees) with their deliveries."""
        return await AlertRepository(self.ctx.sessions).alerts(app_id, limit, access.team_filter())

    async def recent_deliveries(self, limit: int) -> list[dict[str, Any]]:
        return (await AlertRepository(self.ctx.sessions).recent_deliveries(access.team_filter()))[:limit]

    async def seal_stored(self) -> int:
        """Seal the secrets of channels stored before they were encrypted (at start-up); how many."""
        sealed = 0
        async with self.ctx.sessions() as s, s.begin():
            for row in (await s.execute(sa.select(AlertChannel))).scalars():
                cls = CONFIGS[ChannelKind(row.kind)]
                if any(
                    isinstance(row.config.get(n), str) and not row.config[n].startswith(PREFIX)
                    for n in cls.SECRET_FIELDS
                ):
                    row.config = stored_config(open_config(row, self.ctx.secrets), self.ctx.secrets)
                    sealed += 1
        return sealed

    def masked(self, channel: AlertChannel) -> dict[str, Any]:
        return masked(channel, self.ctx.secrets)


def masked(channel: AlertChannel, box: SecretBox) -> dict[str, Any]:
    config = open_config(channel, box)
    return {
        "id": channel.id,
        "team_id": channel.team_id,
        "name": channel.name,
        "kind": channel.kind,
        "config": config.masked(),
        "created_at": channel.created_at,
    }
