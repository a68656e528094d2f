"""The shape DESIGN.md draws, checked on the source: where branches, SQL and I/O may not be."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "streampilot"


def sources(folder: str) -> dict[str, str]:
    return {str(p.relative_to(SRC)): p.read_text() for p in sorted((SRC / folder).rglob("*.py"))}


def test_services_hold_no_kubernetes_branch() -> None:
    """The lifecycle, tracker and policies talk to the Target port; only the factory names the kinds."""
    branch = re.compile(
        r"is_kubernetes|K8S_KINDS|KIND_APPLICATION|KIND_SESSION|KubernetesTarget|KubernetesSession|"
        r"[\"']kubernetes-(application|session)[\"']"
    )
    found = {
        name: branch.findall(text)
        for name, text in sources("services").items()
        if name != "services/targets.py" and branch.search(text)
    }
    assert found == {}


def test_routers_and_pages_hold_no_sql_and_import_no_other_router_or_page() -> None:
    modules = {**sources("api/routers"), **sources("web")}
    assert modules, "no routers found"
    for name, text in modules.items():
        assert "sqlalchemy" not in text and ".sessions(" not in text, f"{name} runs SQL itself"
        for imported in re.findall(r"from streampilot\.(api\.routers|web)\.(\w+) import", text):
            assert imported[1] in ("common", "views", "forms"), f"{name} imports the router/page {imported}"


def test_domain_does_no_io() -> None:
    io = re.compile(
        r"^(import|from) (httpx|sqlalchemy|asyncio|aiosmtplib|kubernetes_asyncio|streampilot\.(services|"
        r"store|flink|targets|api|web|alerts))\b",
        re.M,
    )
    found = {name: io.findall(text) for name, text in sources("domain").items() if io.search(text)}
    assert found == {}
