"""Opens (and, when that succeeds, runs) each case through the C API; one JSON line per case.

Run in a subprocess: a crash kills only this process, and the last "start" line names the case.
argv: cases.json (list of {name, path, verify}) and the library path (EDGEKIT_RUNTIME_LIB).
"""

import json
import resource
import sys

import numpy as np

from edgekit.runtime import native


def main() -> None:
    # A flipped dimension can ask XNNPACK for terabytes: with an address-space limit that is a failed allocation
    # (a status), not a process the kernel's OOM killer ends.
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
    cases = json.loads(open(sys.argv[1]).read())
    for c in cases:
        print(json.dumps({"start": c["name"]}), flush=True)
        result = {"name": c["name"]}
        try:
            art = native.NativeArtifact(c["path"], threads=1, verify_checksums=c["verify"])
            result["open"] = "EK_OK"
            try:
                ins, _ = art.signature(art.methods[0])
                arrays = [np.full([d or 1 for d in t["shape"]], 0.5, dtype=t["dtype"]) for t in ins]
                art.run(art.methods[0], arrays)
                result["run"] = "EK_OK"
            except native.NativeRuntimeError as e:
                result["run"] = e.status
            art.close()
        except native.NativeRuntimeError as e:
            result["open"] = e.status
            result["message"] = e.message[:300]
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
