"""How a Flink client reaches its endpoint: the proxy and .netrc found once, as trust_env would."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from aiohttp import web

from streampilot.flink.client import FlinkClient, FlinkUnavailable
from streampilot.flink.route import Route


def test_the_scheme_proxy_with_its_credentials_unless_no_proxy_names_the_host(tmp_path: Path) -> None:
    env = {"HTTP_PROXY": "http://alice:s3cret@proxy.corp:3128", "NETRC": str(tmp_path / "none")}
    route = Route.find("http://flink.prod.corp:8081", env)
    assert route.proxy == "http://proxy.corp:3128"
    credentials = {"Proxy-Authorization": "Basic " + base64.b64encode(b"alice:s3cret").decode()}
    assert route.options() == {"proxy": "http://proxy.corp:3128", "headers": credentials}
    https = Route.find("https://flink.prod.corp:8443", {**env, "HTTPS_PROXY": env["HTTP_PROXY"]})
    assert https.options() == {"proxy": "http://proxy.corp:3128", "proxy_headers": credentials}  # its CONNECT
    # The lower-case spelling wins, https needs its own variable, NO_PROXY covers hosts and domains.
    assert Route.find("http://flink:8081", {**env, "http_proxy": "proxy2:3128"}).proxy == "http://proxy2:3128"
    assert Route.find("https://flink:8081", env).proxy is None
    for no_proxy in ("flink.prod.corp", ".corp", "corp", "*", "other, prod.corp:8081"):
        assert Route.find("http://flink.prod.corp:8081", {**env, "NO_PROXY": no_proxy}).proxy is None, no_proxy
    for no_proxy in ("prod.corp:9000", "flink.prod", "orp"):
        assert Route.find("http://flink.prod.corp:8081", {**env, "no_proxy": no_proxy}).proxy is not None, no_proxy


def test_netrc_credentials_for_the_host_unless_the_url_has_its_own(tmp_path: Path) -> None:
    rc = tmp_path / "netrc"
    rc.write_text("machine flink.prod.corp login bob password pw\n")
    rc.chmod(0o600)
    env = {"NETRC": str(rc)}
    assert Route.find("http://flink.prod.corp:8081", env).options() == {
        "headers": {"Authorization": "Basic " + base64.b64encode(b"bob:pw").decode()}
    }
    assert Route.find("http://carol:x@flink.prod.corp:8081", env).headers == {}
    assert Route.find("http://other:8081", env).options() == {}
    assert Route.find("http://flink.prod.corp:8081", {"NETRC": str(tmp_path / "missing")}).options() == {}


async def test_a_client_goes_through_the_proxy_the_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str | None]] = []

    async def proxy(request: web.Request) -> web.Response:  # answers as the endpoint behind it would
        seen.append((str(request.url), request.headers.get("Proxy-Authorization")))
        return web.json_response({"jobs": []})

    server = web.Server(proxy)
    runner = web.ServerRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    monkeypatch.setenv("HTTP_PROXY", f"http://alice:s3cret@127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = FlinkClient("http://flink.behind.proxy:8081")
    try:
        assert await client.jobs_overview() == []
        assert await client.jobs_overview() == []
    finally:
        await client.close()
        await runner.cleanup()
    auth = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert seen == [("http://flink.behind.proxy:8081/jobs/overview", auth)] * 2


async def test_a_proxy_that_is_not_a_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://[oops")
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = FlinkClient("http://flink.behind.proxy:8081")
    try:
        with pytest.raises(FlinkUnavailable, match="HTTP_PROXY/HTTPS_PROXY is not a URL"):
            await client.jobs_overview()
    finally:
        await client.close()
