"""Rotation of the key that seals stored secrets (variables' values, alert channels' passwords, keys
and webhook URLs): a new key goes first in the key file, every stored secret is sealed again with it
in one transaction, then the old keys are dropped. Until the last step both keys open everything, so
a crash anywhere leaves every secret readable."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from streampilot.domain.channels import CONFIGS, ChannelKind
from streampilot.services.context import Context
from streampilot.store.orm import AlertChannel, Variable


async def rotate_secrets(ctx: Context) -> dict[str, int]:
    """Rotate the key; how many variables and channels were sealed again."""
    box = ctx.secrets
    await asyncio.to_thread(box.add_key)
    variables = channels = 0
    async with ctx.sessions() as s, s.begin():
        for var in (await s.execute(sa.select(Variable).where(Variable.secret.is_(True)))).scalars():
            var.value = box.reseal(var.value)
            variables += 1
        for channel in (await s.execute(sa.select(AlertChannel))).scalars():
            config = dict(channel.config)
            names = [n for n in CONFIGS[ChannelKind(channel.kind)].SECRET_FIELDS if isinstance(config.get(n), str)]
            for name in names:
                config[name] = box.reseal(config[name])
            if names:
                channel.config = config
                channels += 1
    await asyncio.to_thread(box.drop_old_keys)
    return {"variables": variables, "channels": channels}
