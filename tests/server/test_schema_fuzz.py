"""schemathesis over the OpenAPI schema: no 5xx, no undocumented status, bodies match their schemas.

Driven by hand through hypothesis (schemathesis' pytest plugin does not load under pytest 9.2).
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from edgekit.server.main import create_app
from edgekit.server.settings import Settings
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)


def test_every_operation_conforms(tmp_path):
    # schemathesis' ASGI client sends Host: testserver.
    app = create_app(Settings(data_dir=tmp_path / "data", max_upload_bytes=1 << 20,
                              allowed_hosts=["127.0.0.1", "localhost", "testserver"]))
    with TestClient(app):  # runs the lifespan: the worker is up
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        ops = [r.ok() for r in schema.get_all_operations()]
        assert len(ops) >= 10
        seen: set[int] = set()
        for op in ops:
            @given(case=op.as_strategy())
            @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case):
                response = case.call()
                seen.add(response.status_code)
                assert response.status_code < 500, (case.method, case.path, response.text[:300])
                case.validate_response(response, checks=[status_code_conformance, response_schema_conformance])
            check()
        assert seen & {200, 201} and seen & {404, 415, 422}, seen
