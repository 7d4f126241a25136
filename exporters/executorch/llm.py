"""ExecuTorch programs of an LLM: prefill, decode and reset in one .pte over an in-place KV cache; FiRST's methods.

The LLM's three methods share the cache buffers (``share_mutable_buffers`` memory planning,
``run_reinplace_pass``), so the runtime hands no cache in or out per token. ``write_pte`` lowers
any set of methods (the FiRST export's per-layer ones too) with the options' delegate.
"""

from __future__ import annotations

from pathlib import Path

import torch

from edgekit.exporters.executorch import ExecuTorchOptions

KV_CACHE = "in_place"  # the artifact keeps the KV cache inside; the manifest lists a `reset` method


def write_pte(programs: dict, stage: Path, options: ExecuTorchOptions, config=None, name: str = "model.pte") -> str:
    """Lower ``programs`` (method -> torch.export program) into one .pte; delegated as ``options.delegate`` says."""
    from executorch.exir import to_edge_transform_and_lower

    partitioner = []
    if options.delegate == "xnnpack":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        partitioner.append(XnnpackPartitioner())
    edge = to_edge_transform_and_lower(programs, partitioner=partitioner)
    (stage / name).write_bytes(edge.to_executorch(config).buffer)
    return name


def convert(step, programs: dict, examples: dict, stage: Path, options: ExecuTorchOptions) -> dict:
    """prefill, decode and reset over one in-place KV cache that the three methods share: {method: file}."""
    from executorch.exir import ExecutorchBackendConfig
    from executorch.exir.passes import MemoryPlanningPass

    from edgekit.exporters.llm import METHODS
    from edgekit.model_zoo.llama import LlamaInPlaceStep

    inplace, reset = LlamaInPlaceStep(step.model).eval(), LlamaInPlaceStep(step.model, reset=True).eval()
    one = torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        programs = {m: torch.export.export(inplace, examples[m][:2]) for m in METHODS}
        programs["reset"] = torch.export.export(reset, (one,))
        name = write_pte(programs, stage, options, ExecutorchBackendConfig(
            memory_planning_pass=MemoryPlanningPass(alloc_graph_input=False, share_mutable_buffers=True),
            emit_mutable_buffer_names=True, run_reinplace_pass=True))
    return {m: name for m in METHODS}
