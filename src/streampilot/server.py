"""``streampilot server``: open the platform, start what it owns, serve the API, clean up on exit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from streampilot.api.app import create_app
from streampilot.logs import configure, uvicorn_config
from streampilot.services.platform import Platform
from streampilot.settings import Settings
from streampilot.store.db import reachable
from streampilot.tasks import cancel_and_wait

log = logging.getLogger("streampilot")


def serve(settings: Settings, *, host: str | None, port: int | None, example: bool, local_cluster: bool) -> None:
    """Raises ``DatabaseUrlError`` (one line, no password) when the database cannot be used."""
    configure(settings.log.level, settings.log.format)
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)  # the SQLite database's directory
    asyncio.run(reachable(settings.effective_database_url))
    platform = Platform(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        issued = await platform.open()
        if issued:
            log.info("admin API token written to %s (mode 0600)", settings.token_file)
        else:
            log.info("admin API token is in %s", settings.token_file)
        platform.start_loops()
        bring_up = None
        if local_cluster:
            # The API answers at once; the local cluster shows STARTING until it is ready.
            bring_up = platform.bring_up_in_background(example=example)
        log.info(
            "streampilot ready on http://%s:%s (API docs at /docs)",
            host or settings.host,
            port or settings.port,
        )
        try:
            yield
        finally:
            if bring_up is not None:
                await cancel_and_wait([bring_up])
            await platform.stop_loops()
            if local_cluster:
                log.info("stopping the local Flink clusters started by this server")
                await platform.stop_local_clusters()
            await platform.close()

    app = create_app(platform, lifespan=lifespan)
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_config=uvicorn_config(),
        log_level=settings.log.level,
        access_log=settings.log.level == "debug",
    )
