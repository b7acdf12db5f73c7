"""The sync API's OpenAPI document, and schemathesis against it: no request makes the server fail (5xx)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from pwa import state
from pwa.sync.server import build_app
from storage import sync_store
from storage.store import Store
from tests.sync_support import Caseload, new_store, seed

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
    assert {"/api/sync/enrol", "/api/sync/push", "/api/sync/pull", "/api/sync/audit",
            "/api/sync/status"} <= set(document["paths"])
    push = document["paths"]["/api/sync/push"]["post"]
    assert {"200", "400", "401", "403", "409", "422"} <= set(push["responses"])
    sent = document["paths"]["/api/sync/audit"]["post"]
    assert {"200", "400", "401", "403", "422"} <= set(sent["responses"])
    assert sent["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/AuditResult")
    assert sent["responses"]["403"]["content"]["application/json"]["schema"]["$ref"].endswith("/Refusal")


def test_schemathesis_finds_no_server_error(api_store):
    server, caseload = api_store
    _device, _worker, token = sync_store.enrol_device(
        server, sync_store.issue_enrolment_code(server, caseload.workers["ben"], caseload.workers["admin"]), "fuzz")
    schema = schemathesis.openapi.from_asgi("/openapi.json", build_app())
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6  # the five sync routes and /status
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
    from starlette.testclient import TestClient

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
