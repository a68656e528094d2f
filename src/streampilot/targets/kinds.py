"""The kinds of cluster, and what registering one checks (field errors before anything is stored)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from streampilot.domain.errors import SpecError
from streampilot.domain.k8s import K8S_KINDS
from streampilot.flink.client import FlinkClient, FlinkError

LOCAL = "local"
STANDALONE = "standalone"
CLUSTER_KINDS = (LOCAL, STANDALONE, *K8S_KINDS)


@dataclass
class Registration:
    rest_url: str | None
    flink_version: str | None
    options: dict[str, Any] = field(default_factory=dict)


async def register_remote(kind: str, rest_url: str | None, options_raw: dict[str, Any] | None) -> Registration:
    """A cluster streampilot does not start: its address or options, checked against the real thing."""
    if kind in K8S_KINDS:
        from streampilot.targets.kubernetes.observer import check_connection, parse_options

        options = parse_options(kind, options_raw or {})
        await check_connection(options)
        return Registration(None, None, options.model_dump(mode="json"))
    if kind != STANDALONE:
        raise SpecError.one("kind", f"unknown cluster kind {kind!r}; use one of {', '.join(CLUSTER_KINDS)}")
    if not rest_url:
        raise SpecError.one("rest_url", "a standalone cluster needs the REST address of its JobManager")
    parsed = urlparse(rest_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SpecError.one("rest_url", f"{rest_url!r} is not an http(s) URL like http://host:8081")
    client = FlinkClient(rest_url, timeout_s=5)
    try:
        version = (await client.overview()).flink_version
    except FlinkError as exc:
        raise SpecError.one("rest_url", f"no Flink REST API answers at {rest_url}: {exc}") from None
    finally:
        await client.close()
    return Registration(rest_url, version)
