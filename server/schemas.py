"""Request and response models (Create / Public)."""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from edgekit.bench import BenchConfig
from edgekit.targets import TARGETS

JobStatus = Literal["queued", "running", "succeeded", "failed", "timed_out", "canceled"]
DType = Literal["float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"]
RUNTIMES = {t.name: t.runtime for t in TARGETS}  # artifact format -> the runtime that runs it


SymbolName = Annotated[str, Field(min_length=1, max_length=100)]
# A dimension: an int, a symbol name (bound by another input's shape or by `dims`) or null (unknown). A spec's
# shape must end up concrete; symbols and nulls are accepted so that a signature sent back as is validates.
DimIn = Annotated[int, Field(ge=0, le=2**31 - 1)] | SymbolName | None


class TensorSpecIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    shape: list[DimIn] | None = Field(None, max_length=8, description="concrete sizes; symbolic names and null "
                                      "are taken from `dims` or other inputs; omitted: the model's own shape")
    dtype: DType | None = Field(None, description="omitted: the model's dtype")
    value: int | float | None = Field(None, description="fill with this constant (e.g. a sample rate)")
    range: list[int] | None = Field(None, min_length=2, max_length=2,
                                    description="integer inputs: random values in [low, high] (default 1..16)")


class ArtifactPublic(BaseModel):
    id: str
    sha256: str
    format: str
    layout: Literal["file", "dir"]
    filename: str | None
    bytes: int
    signature: dict[str, Any] | None
    has_reference_inputs: bool
    runnable: bool
    not_runnable_reason: str | None
    created_at: float


class ArtifactList(BaseModel):
    items: list[ArtifactPublic]
    count: int


def bench_fields(**wire: tuple[Any, dict]) -> dict[str, tuple[Any, Any]]:
    """The benchmark fields of a job request, from edgekit.bench.BenchConfig: its types, defaults, bounds and
    descriptions. ``wire[name] = (type, extra Field kwargs)`` gives a field its type on the wire."""
    hints = get_type_hints(BenchConfig)
    out = {}
    for f in fields(BenchConfig):
        meta = {k: v for k, v in f.metadata.items() if v is not None and k not in ("api", "cli")}
        if f.metadata.get("api", True):
            kind, extra = wire.get(f.name, (hints[f.name], {}))
            out[f.name] = (kind, Field(f.default, **meta, **extra))
    return out


# What the local `edgekit bench` takes, with the wire types of inputs (a spec is a list) and dims (symbol names).
JobBench = create_model("JobBench", __config__=ConfigDict(extra="forbid"), **bench_fields(
    inputs=(Literal["reference", "random"] | list[TensorSpecIn], {}),
    dims=(dict[SymbolName, Annotated[int, Field(ge=0, le=2**31 - 1)]] | None, {"max_length": 32})))


class JobCreate(JobBench):
    model_config = ConfigDict(extra="forbid")
    artifact_id: str = Field(..., max_length=64)
    runtime: str | None = Field(None, description="defaults to the artifact format's runtime: "
                                + ", ".join(RUNTIMES.values()))
    timeout_s: float | None = Field(None, gt=0, le=86_400)


class JobPublic(BaseModel):
    id: str
    artifact_id: str
    artifact_sha256: str
    status: JobStatus
    attempts: int
    max_attempts: int
    phase: str | None
    reason: str | None = Field(None, description="runtime_error (an exception from the runtime, its message in "
                               "error.message), runtime_crashed (a signal or an exit without a result), timed_out, "
                               "out_of_memory, invalid_input, interrupted, artifact_checksum_mismatch, canceled")
    error: dict[str, Any] | None
    result: dict[str, Any] | None
    config: dict[str, Any]
    queue_position: int | None = None
    created_at: float
    started_at: float | None
    finished_at: float | None


class JobList(BaseModel):
    items: list[JobPublic]
    count: int


class RuntimeInfo(BaseModel):
    available: bool
    version: str | None
    reason: str | None


class DeviceInfo(BaseModel):
    platform: str
    machine: str
    cpu: str | None
    cpu_count: int | None
    cpu_affinity: list[int] | None = None
    load_average: list[float] | None = None
    memory_bytes: int | None
    python: str
    edgekit: str
    runtimes: dict[str, RuntimeInfo]


class Health(BaseModel):
    status: Literal["ok", "draining"]
    version: str
    worker_alive: bool
    queued: int
    running: int


def artifact_public(row: dict) -> ArtifactPublic:
    v = row.get("validation") or {}
    return ArtifactPublic(id=row["id"], sha256=row["sha256"], format=row["format"], layout=row["layout"],
                          filename=row["filename"], bytes=row["bytes"], signature=row["signature"],
                          has_reference_inputs=bool(row["has_reference"]), runnable=bool(v.get("loaded")),
                          not_runnable_reason=v.get("reason"), created_at=row["created_at"])


def job_public(row: dict, queue_position: int | None = None) -> JobPublic:
    return JobPublic(queue_position=queue_position,
                     **{k: row[k] for k in JobPublic.model_fields if k in row and k != "queue_position"})
