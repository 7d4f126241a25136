"""Structural check of an uploaded artifact, run in a sandboxed child (R1, R2).

    python -m edgekit.server.validate_child MODEL_PATH FORMAT RESULT_JSON

Loads the model with its runtime (a crash here kills only this child) and
reports the input/output signature, or why it cannot be loaded.
"""

from __future__ import annotations

import json
import sys


def main(path: str, fmt: str, result_file: str) -> None:
    from edgekit.errors import EdgekitError
    from edgekit.runtime import available_runtimes_for, load

    out: dict
    probe = available_runtimes_for(fmt)
    if not probe["available"]:
        out = {"loaded": False, "reason": probe["reason"], "signature": None}
    else:
        try:
            session = load(path, threads=1)
            out = {"loaded": True, "reason": None,
                   "signature": {"inputs": [s.to_json() for s in session.inputs],
                                 "outputs": [s.to_json() for s in session.outputs]}}
        except EdgekitError as e:
            out = {"error": {"code": e.code, "message": e.message}}
        except Exception as e:  # noqa: BLE001 -- the runtime's own parse error: the file is not a valid model
            out = {"error": {"code": "artifact_invalid", "message": f"{type(e).__name__}: {e}"[:2000]}}
    with open(result_file, "w") as f:
        json.dump(out, f)


def probe_all(result_file: str) -> None:
    from edgekit.runtime import available_runtimes

    with open(result_file, "w") as f:
        json.dump(available_runtimes(), f)


if __name__ == "__main__":
    if sys.argv[1] == "--probe":
        probe_all(sys.argv[2])
    else:
        main(*sys.argv[1:4])
