"""The sync API's OpenAPI document, and schemathesis against it: no request makes the server fail (5xx)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from sqlmodel import select

from pwa import state
from pwa.sync import messages
from pwa.sync.server import build_app
from storage.models import AuditEvent, CarePlan
from storage.store import Store
from storage.sync import devices
from tests.sync_support import Caseload, SyncServer, new_store, seed, server_store

with warnings.catch_warnings():  # starlette suggests httpx2; the test client works as it is
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

EXAMPLES = 25


@pytest.fixture
def api_store(db_url: str) -> Iterator[tuple[Store, Caseload]]:
    server = new_store(db_url)
    server.outbox_enabled = False
    caseload = seed(server)
    state.set_store(server)
    yield server, caseload
    server.engine.dispose()


def test_openapi_document_describes_every_sync_route():
    document = build_app().openapi()
    assert {"/api/sync/enrol", "/api/sync/push", "/api/sync/sync", "/api/sync/pull", "/api/sync/audit",
            "/api/sync/status"} <= set(document["paths"])
    for pushing in ("push", "sync"):
        push = document["paths"][f"/api/sync/{pushing}"]["post"]
        assert {"200", "400", "401", "403", "409", "422"} <= set(push["responses"])
    sent = document["paths"]["/api/sync/audit"]["post"]
    assert {"200", "400", "401", "403", "422"} <= set(sent["responses"])
    assert sent["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/AuditResult")
    assert sent["responses"]["403"]["content"]["application/json"]["schema"]["$ref"].endswith("/Refusal")


def test_schemathesis_finds_no_server_error(api_store):
    server, caseload = api_store
    _device, _worker, token = devices.enrol_device(
        server, devices.issue_enrolment_code(server, caseload.workers["ben"], caseload.workers["admin"]), "fuzz")
    schema = schemathesis.openapi.from_asgi("/openapi.json", build_app())
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7  # the six sync routes and /status
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))  # no shrinking: the first failure is reported as is
        def check(case: schemathesis.Case) -> None:
            for headers in ({"Authorization": f"Bearer {token}"}, {}):
                response = case.call(headers=headers)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.path} -> {response.status_code}: {response.text[:200]}")
                assert response.status_code < 500, failures[-1]

        check()
    assert not failures


def test_a_request_past_the_size_limit_is_refused_before_it_is_read():
    # A runaway or hostile device cannot make the server hold a huge body: 413, with what to do, and
    # nothing applied. Declared lengths are refused at once; a streamed (chunked) body as it passes the limit.
    from pwa.sync.server import MAX_REQUEST_BYTES, BodyLimit

    assert any(m.cls is BodyLimit for m in build_app().user_middleware)  # the server has it, at 16 MB
    assert MAX_REQUEST_BYTES == 16 * 1024 * 1024
    with TestClient(BodyLimit(build_app(), limit=1024)) as client:  # the same limit, made small to test
        big = b'{"batch_id": "' + b"x" * 2048 + b'"}'
        declared = client.post("/api/sync/push", content=big, headers={"Content-Type": "application/json"})
        assert declared.status_code == 413
        assert declared.json()["code"] == "too_large" and "Nothing in it was applied" in declared.json()["message"]

        streamed = client.post("/api/sync/push", content=iter([b'{"batch_id": "', b"x" * 2048, b'"}']),
                               headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413
        # Under the limit, the request reaches the API as before (here: refused for having no token).
        small = client.post("/api/sync/push", json={"batch_id": "x", "changes": [], "signature": ""})
        assert small.status_code in (401, 422)
        assert client.get("/status").status_code == 200  # other paths are not limited


# Schema-valid requests the API still refuses, and why the document cannot say so: a push or an audit upload
# whose signature is not the device token's HMAC (400 "tampered"), an enrolment code that was never issued
# (400 "bad_code"), a device the server does not know (401), a child that is not the worker's (403).
SCHEMATHESIS_CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2XX", "400", "401", "403", "404", "409"]
"""
FUZZ_EXAMPLES = {"small": 30, "full": 300}[os.environ.get("SEEN_FAULT_SIZE", "small")]


@pytest.mark.postgres
def test_schemathesis_with_every_check_finds_nothing_against_a_real_server(pg_url, tmp_path):
    # The schemathesis CLI, all its checks (status codes, response shapes, schema-valid data accepted and
    # schema-violating data refused, auth ignored...), against `seen server` on PostgreSQL, as a device.
    server = server_store(pg_url)
    caseload = seed(server, suffix="-" + uuid.uuid4().hex[:6])
    _device, _worker, token = devices.enrol_device(
        server, devices.issue_enrolment_code(server, caseload.workers["ben"], caseload.workers["admin"]), "fuzz")
    server.engine.dispose()
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    running = SyncServer(pg_url, tmp_path / "server")
    running.start()
    try:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config), "run",
             f"{running.url}/openapi.json", "--checks", "all", "-H", f"Authorization: Bearer {token}",
             "--max-examples", str(FUZZ_EXAMPLES), "--workers", "1", "--seed", "1405", "--no-color"],
            capture_output=True, text=True, timeout=900, cwd=tmp_path,  # its cache stays out of the checkout
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    finally:
        running.kill()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "0 found" in result.stdout or " passed" in result.stdout


@pytest.fixture
def device_token(api_store: tuple[Store, Caseload]) -> str:
    server, caseload = api_store
    return devices.enrol_device(
        server, devices.issue_enrolment_code(server, caseload.workers["ben"], caseload.workers["admin"]), "t")[2]


def _audit_upload(token: str, **event: Any) -> dict[str, Any]:
    wire = [{"id": "e1", "at": "2026-11-20T10:00:00Z", "worker_id": None, "action": "read", "kind": "child",
             "record_id": "r1", "child_id": None, "detail": "", **event}]
    batch_id = str(uuid.uuid4())
    return {"batch_id": batch_id, "events": wire,
            "signature": messages.audit_signature(messages.token_key(token), batch_id, wire)}


@pytest.mark.parametrize("event", [{"record_id": "r\x00"}, {"detail": "a\x00b"}, {"at": "9999-12-31T23:59:59-01:00"},
                                   {"at": "9999-12-31T00:00:00Z"}])
def test_bad_audit_events_are_refused_with_a_reason_not_a_server_error(api_store, device_token, event):
    server, _caseload = api_store
    with TestClient(build_app()) as client:
        response = client.post("/api/sync/audit", json=_audit_upload(device_token, **event),
                               headers={"Authorization": f"Bearer {device_token}"})
    assert response.status_code in (403, 422), response.text
    answer = messages.Refusal.model_validate(response.json())
    assert ("control character" if response.status_code == 422 else "dated in the future") in answer.message
    with server.session() as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.origin.is_not(None))).first() is None  # type: ignore[union-attr]


def test_a_device_name_with_a_nul_is_refused_at_enrolment(api_store):
    server, caseload = api_store
    code = devices.issue_enrolment_code(server, caseload.workers["ben"], caseload.workers["admin"])
    with TestClient(build_app()) as client:
        response = client.post("/api/sync/enrol", json={"code": code, "device_name": "phone\x00"})
        assert response.status_code == 422 and "device_name" in response.json()["message"]
        assert client.post("/api/sync/enrol", json={"code": code, "device_name": "phone"}).status_code == 200


def test_a_body_that_is_not_json_is_refused_in_the_documented_shape(api_store, device_token):
    with TestClient(build_app()) as client:
        response = client.post("/api/sync/push", content=b"\xff\xfe not json",
                               headers={"Authorization": f"Bearer {device_token}",
                                        "Content-Type": "application/json"})
        pulled = client.post("/api/sync/pull", json={"cursor": False},
                             headers={"Authorization": f"Bearer {device_token}"})
    assert response.status_code in (400, 422)
    assert messages.Refusal.model_validate(response.json()).message
    assert pulled.status_code == 422 and "cursor" in pulled.json()["message"]


def test_a_date_past_the_calendars_end_is_refused_not_a_server_error(api_store, device_token):
    server, caseload = api_store
    clock = server.hlc.stamp()
    fields = {"id": str(uuid.uuid4()), "child_id": caseload.children["Alfie"], "kind": "care_plan",
              "start": "2026-11-01", "ended": None, "revision": 1, "field_clocks": json.dumps({"kind": clock}),
              "updated_at": "9999-12-31T23:00:00-05:00"}
    wire = [{"change_id": str(uuid.uuid4()), "kind": "care_plan", "record_id": fields["id"], "fields": fields,
             "body": {"summary": ""}, "clock": clock, "base_clocks": {}}]
    batch_id = str(uuid.uuid4())
    batch = {"batch_id": batch_id, "changes": wire,
             "signature": messages.batch_signature(messages.token_key(device_token), batch_id, wire)}
    with TestClient(build_app()) as client:
        response = client.post("/api/sync/push", json=batch, headers={"Authorization": f"Bearer {device_token}"})
    assert response.status_code == 422 and "cannot store" in response.json()["message"]
    with server.session() as session:
        assert session.get(CarePlan, fields["id"]) is None
