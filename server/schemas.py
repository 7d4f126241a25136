"""Request and response models (Create / Public)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    artifact_id: str = Field(..., max_length=64)
    runtime: str | None = Field(None, description="defaults to the artifact format's runtime: "
                                + ", ".join(RUNTIMES.values()))
    warmup: int = Field(10, ge=0, le=100_000)
    warmup_seconds: float = Field(0.5, ge=0, le=600)
    runs: int = Field(50, ge=1, le=100_000)
    min_seconds: float = Field(1.0, ge=0, le=3600, description="keep timing until this much time has passed")
    max_runs: int = Field(100_000, ge=1, le=1_000_000)
    threads: int = Field(1, ge=1, le=256)
    inputs: Literal["reference", "random"] | list[TensorSpecIn] = Field(
        "reference", description="the artifact's reference inputs, random inputs of the model's signature, or "
        "an explicit spec (random data of the given shapes and dtypes)")
    dims: dict[SymbolName, Annotated[int, Field(ge=0, le=2**31 - 1)]] | None = Field(
        None, max_length=32, description="sizes for symbolic dimensions, e.g. {\"N\": 1, \"H\": 640}")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    timeout_s: float | None = Field(None, gt=0, le=86_400)
    # LLM artifacts (edgekit.llm_bench): each round prefills prompt_tokens then times new_tokens decode steps;
    # runs then counts decode steps and the result gains an `llm` section (TTFT, prefill/decode tokens/s)
    prompt_tokens: int | None = Field(None, ge=1, le=65_536, description="LLM artifacts: prompt length (16)")
    new_tokens: int | None = Field(None, ge=1, le=65_536, description="LLM artifacts: decode steps a round (128)")


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
