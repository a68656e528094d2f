"""How a Flink client reaches its REST address: the proxy and the credentials that aiohttp's
``trust_env`` would find, found once per address (see ``Route``)."""

from __future__ import annotations

import base64
import netrc
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from yarl import URL


@dataclass(frozen=True)
class Route:
    """How a client reaches its endpoint: what aiohttp's ``trust_env`` would find (HTTP(S)_PROXY,
    NO_PROXY, credentials in ``~/.netrc`` or ``$NETRC``), found once per client instead of once per
    request: aiohttp looks it up for every request in a worker thread, which was a quarter of the
    tracker's CPU (measured with py-spy on the fleet bench). Credentials travel as headers."""

    proxy: str | None = None
    proxy_headers: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def find(cls, base_url: str, environ: Mapping[str, str] | None = None) -> Route:
        url, env = URL(base_url), os.environ if environ is None else environ
        proxy_url = None
        if url.host and not _bypassed(url.host, url.port, env.get("no_proxy") or env.get("NO_PROXY") or ""):
            proxy_url = _proxies(env).get(url.scheme)
        proxy, proxy_headers, headers = None, dict[str, str](), dict[str, str]()
        if proxy_url:
            parsed = URL(proxy_url if "://" in proxy_url else f"http://{proxy_url}")
            if parsed.user is not None:
                # Plain HTTP goes to the proxy with the request's own headers (aiohttp sends proxy_headers
                # only with the CONNECT of an HTTPS request).
                which = headers if url.scheme == "http" else proxy_headers
                which["Proxy-Authorization"] = _basic(parsed.user, parsed.password or "")
            proxy = str(parsed.with_user(None))
        if url.user is None and url.host:
            try:
                found = netrc.netrc(env.get("NETRC")).authenticators(url.host)
            except (OSError, netrc.NetrcParseError):
                found = None  # no ~/.netrc (the usual case) or one we cannot read: no credentials from it
            if found is not None:
                headers["Authorization"] = _basic(found[0], found[2] or "")
        return cls(proxy, proxy_headers, headers)

    def options(self) -> dict[str, Any]:
        """Keyword arguments of a request."""
        chosen = {"proxy": self.proxy, "proxy_headers": self.proxy_headers, "headers": self.headers}
        return {k: v for k, v in chosen.items() if v}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _proxies(env: Mapping[str, str]) -> dict[str, str]:
    """``scheme -> proxy URL`` from ``<scheme>_proxy`` variables, the lower-case spelling first (as curl)."""
    found: dict[str, str] = {}
    for name, value in env.items():
        low = name.lower()
        if value and low.endswith("_proxy") and low != "no_proxy":
            scheme = low[: -len("_proxy")]
            if name == low or scheme not in found:
                found[scheme] = value
    return found


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """``NO_PROXY`` as curl and Python read it: ``*``, or hosts and domains (``example.com`` and
    ``.example.com`` both cover ``a.example.com``), each with an optional ``:port``."""
    host = host.lower()
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        name, _, entry_port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
        name = name.lstrip(".")
        if name and (host == name or host.endswith("." + name)) and (not entry_port or entry_port == str(port)):
            return True
    return False
