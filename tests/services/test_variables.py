"""Variables: secrets stored encrypted and never returned, references resolved at submission and
masked wherever the resolved configuration is shown, undefined ones field errors with their line."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from streampilot.services.platform import Platform
from streampilot.store.orm import Variable
from streampilot.targets.fake import FakeFleet
from tests.helpers import DATAGEN_SQL, wait_operation

SECRET = "hunter2-x9"
TEMPLATE_SQL = DATAGEN_SQL.replace("'20'", "'${rate}'")
PROPERTIES = {"pipeline.global-job-parameters": "token:${token}"}


async def test_a_secret_is_encrypted_and_never_returned(api: httpx.AsyncClient, platform: Platform) -> None:
    resp = await api.post("/api/v1/variables", json={"name": "token", "value": SECRET, "secret": True})
    assert resp.status_code == 201, resp.text
    secret = resp.json()
    assert secret["value"] is None and secret["secret"] is True
    resp = await api.post("/api/v1/variables", json={"name": "rate", "value": "7", "description": "rows/s"})
    assert resp.json()["value"] == "7"

    listed = (await api.get("/api/v1/variables")).json()
    assert [(v["name"], v["value"]) for v in listed] == [("rate", "7"), ("token", None)]
    assert SECRET not in (await api.get(f"/api/v1/variables/{secret['id']}")).text

    async with platform.ctx.sessions() as s:
        stored = (await s.execute(sa.select(Variable.value).where(Variable.name == "token"))).scalar_one()
    assert stored.startswith("fernet:") and SECRET not in stored
    assert (platform.settings.home / "secret.key").stat().st_mode & 0o777 == 0o600

    # A new value keeps it secret; making it plain needs the value again.
    resp = await api.patch(f"/api/v1/variables/{secret['id']}", json={"value": "n3w-" + SECRET})
    assert resp.status_code == 200 and resp.json()["value"] is None
    resp = await api.patch(f"/api/v1/variables/{secret['id']}", json={"secret": False})
    assert resp.status_code == 409 and "give its value again" in resp.json()["detail"]


async def test_references_resolve_at_submission_and_secrets_stay_masked(
    api: httpx.AsyncClient, platform: Platform, cluster_id: int, fleet: FakeFleet
) -> None:
    body = {"name": "uses-vars", "kind": "sql", "cluster_id": cluster_id, "sql": TEMPLATE_SQL, "properties": PROPERTIES}
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 422, resp.text
    problems = {p["field"]: p for p in resp.json()["detail"]}
    assert "undefined variable ${rate}" in problems["sql"]["message"]
    assert (problems["sql"]["line"], problems["sql"]["column"]) == (1, TEMPLATE_SQL.index("${rate}") + 1)
    assert "undefined variable ${token}" in problems["properties.pipeline.global-job-parameters"]["message"]

    await api.post("/api/v1/variables", json={"name": "rate", "value": "7"})
    token = (await api.post("/api/v1/variables", json={"name": "token", "value": SECRET, "secret": True})).json()
    resp = await api.post("/api/v1/apps", json=body)
    assert resp.status_code == 201, resp.text
    app = resp.json()
    # The version keeps the references, not the values.
    assert "${rate}" in (await api.get(f"/api/v1/apps/{app['id']}?with_spec=true")).text

    start = await api.post(f"/api/v1/apps/{app['id']}/start")
    assert (await wait_operation(api, start.json()["operation"]["id"]))["state"] == "succeeded"
    launched = fleet.launches[-1]
    assert "'rows-per-second' = '7'" in (launched.request.spec.sql or "")
    assert launched.config["pipeline.global-job-parameters"] == f"token:{SECRET}"  # what the cluster gets

    shown = (await api.get(f"/api/v1/apps/{app['id']}/launch-config")).json()
    assert shown["submitted"]["pipeline.global-job-parameters"] == "token:******"
    assert shown["current"]["pipeline.global-job-parameters"] == "token:******"
    for path in ("", "/events", "/operations", "/launch-config"):
        assert SECRET not in (await api.get(f"/api/v1/apps/{app['id']}{path}")).text, path

    # Used by an app: not deleted (the next start would fail); free again once the app stops using it.
    resp = await api.delete(f"/api/v1/variables/{token['id']}")
    assert resp.status_code == 409 and "uses-vars" in resp.json()["detail"]
    stop = await api.post(f"/api/v1/apps/{app['id']}/cancel")
    await wait_operation(api, stop.json()["operation"]["id"])
    resp = await api.patch(f"/api/v1/apps/{app['id']}", json={"properties": {}})
    assert resp.status_code == 200, resp.text
    assert (await api.delete(f"/api/v1/variables/{token['id']}")).status_code == 204


async def test_bad_variables_are_field_errors(api: httpx.AsyncClient) -> None:
    resp = await api.post("/api/v1/variables", json={"name": "9lives", "value": "x"})
    assert resp.status_code == 422 and resp.json()["detail"][0]["field"] == "name"
    resp = await api.post("/api/v1/variables", json={"name": "nul", "value": "a\x00b"})
    assert resp.status_code == 422 and resp.json()["detail"][0]["field"] == "value"
    assert (await api.post("/api/v1/variables", json={"name": "twice", "value": "1"})).status_code == 201
    assert (await api.post("/api/v1/variables", json={"name": "twice", "value": "2"})).status_code == 409
    assert (await api.get("/api/v1/variables/4242")).status_code == 404
    assert (await api.delete("/api/v1/variables/4242")).status_code == 404
