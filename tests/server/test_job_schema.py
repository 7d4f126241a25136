"""The server's job request is derived from edgekit.bench.BenchConfig: one benchmark configuration type."""

from __future__ import annotations

from dataclasses import fields

import pytest

pytest.importorskip("fastapi")

from edgekit.bench import BenchConfig  # noqa: E402
from edgekit.server.schemas import JobCreate  # noqa: E402


def test_every_bench_field_is_a_job_field_with_its_default():
    bench = {f.name: f for f in fields(BenchConfig) if f.metadata.get("api", True)}
    job = JobCreate.model_fields
    assert set(bench) <= set(job) and "input_spec" not in job
    assert set(job) - set(bench) == {"artifact_id", "runtime", "timeout_s"}  # what only a server job has
    for name, f in bench.items():
        assert job[name].default == f.default, name
        assert job[name].description == f.metadata["description"], name


def test_bounds_come_from_the_bench_config():
    schema = JobCreate.model_json_schema()["properties"]
    assert (schema["runs"]["minimum"], schema["runs"]["maximum"]) == (1, 100_000)
    assert (schema["threads"]["minimum"], schema["threads"]["maximum"]) == (1, 256)
    assert schema["new_tokens"]["anyOf"][0]["minimum"] == 1
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        JobCreate(artifact_id="a", runs=0)
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        JobCreate(artifact_id="a", input_spec=[])


def test_a_job_config_is_a_bench_config():
    body = JobCreate(artifact_id="a", runs=7, threads=2, inputs="random", dims={"N": 3}, prompt_tokens=4)
    config = body.model_dump(exclude={"artifact_id", "runtime", "timeout_s"})
    assert BenchConfig(**config) == BenchConfig(runs=7, threads=2, inputs="random", dims={"N": 3}, prompt_tokens=4)
