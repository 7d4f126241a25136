"""The one export skeleton every artifact goes through: classifier, LLM and FiRST.

stage directory -> trace + convert (converter output captured; a failure becomes a user
error naming the op and layer, its full log beside the artifact) -> describe (the manifest,
with the compression ledger and its gates) -> write the manifest -> parity -> gate ->
write the manifest -> rename into place. Nothing is left at ``out_dir`` when a step fails.

The callers pass what differs as an ``ExportSteps``: ``exporters/pipeline.py`` (one
``forward`` method), ``exporters/llm.py`` (prefill + decode) and ``exporters/llm_first.py``
(per-layer methods).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager

from edgekit.artifact import Artifact, load_artifact, staging_dir, write_manifest
from edgekit.errors import EdgekitError, ParityError


@dataclass
class ExportSteps:
    """What one export does at each step of ``staged_export``.

    ``trace()``: {method: torch.export program}; ``convert(programs, stage)``: writes the model file(s)
    into ``stage`` and returns what ``describe`` and ``parity`` need; ``describe(stage, result)``: the
    manifest (it may raise the ledger's gates, e.g. ``compression_lost``); ``parity(stage, result, manifest)``:
    the parity record, or None where there is nothing to compare; ``gates``: further checks of the finished
    manifest (the classifier's compression-cost gate), run after the parity gate.
    """

    target: str
    trace: Callable[[], dict[str, Any]]
    convert: Callable[[dict[str, Any], Path], Any]
    describe: Callable[[Path, Any], dict]
    parity: Callable[[Path, Any, dict], dict | None] | None = None
    parity_gate: bool = True
    gates: tuple[Callable[[dict], None], ...] = ()
    options: Any = None                                  # the target's options, for diagnose's workarounds
    context: Callable[[], ContextManager] | None = None  # held while tracing and converting (model rewrites)
    diagnose_method: str = "forward"                     # the program a conversion failure is looked up in


def staged_export(out_dir: str | Path, steps: ExportSteps) -> Artifact:
    """Run ``steps`` into a staging directory beside ``out_dir``; rename it to ``out_dir`` when all passed."""
    from edgekit.exporters.base import captured_native_output, diagnose
    from edgekit.exporters.failure import log_path_for

    out_dir = Path(out_dir)
    log_file = log_path_for(out_dir)
    with staging_dir(out_dir) as stage:
        with captured_native_output() as log, (steps.context or contextlib.nullcontext)():
            programs: dict[str, Any] = {}
            try:
                programs = steps.trace()
                result = steps.convert(programs, stage)
            except EdgekitError:
                raise
            except Exception as exc:  # converter failures become user-facing errors
                raise diagnose(exc, programs.get(steps.diagnose_method), steps.target, log, steps.options,
                               log_file) from exc
        log_file.unlink(missing_ok=True)  # a previous failure's log no longer applies
        manifest = steps.describe(stage, result)
        write_manifest(stage, manifest)  # parity loads the staged artifact
        record = steps.parity(stage, result, manifest) if steps.parity is not None else None
        if record is not None:
            manifest["parity"] = record
            if steps.parity_gate:
                gate_parity(steps.target, record)
        for gate in steps.gates:
            gate(manifest)
        write_manifest(stage, manifest)
    return load_artifact(out_dir)


def gate_parity(target: str, record: dict) -> None:
    """A failed numeric parity is a ParityError; a failed structural check (Core ML off macOS) names its problems."""
    if record["ok"]:
        return
    if record.get("mode") == "structural":
        raise EdgekitError("structural_check_failed", f"the {target} artifact does not match the model: "
                           + "; ".join(record.get("problems", [])), fix="report this as a bug",
                           details={"target": target, "problems": record.get("problems", [])})
    raise ParityError(target, record["metrics"], record.get("tolerance", {}))
