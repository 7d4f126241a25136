"""edgekit_app (the C API) against `edgekit generate` (Python) on one LLM artifact: same text, and
process time and tokens/s, interleaved runs, medians.

    python examples/cpp/compare_generate.py out/llm/llama_pydoc/executorch [--rounds 5] [--threads 1]

Needs `make native example-cpp`; prints one line per side and exits 1 if the texts differ.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

APP = Path(__file__).resolve().parent / "_build" / "edgekit_app"
PATTERNS = {"app": r"prefill ([\d.]+) tok/s, decode ([\d.]+) tok/s",
            "python": r"([\d.]+) tok/s prefill; \d+ new tokens: ([\d.]+) tok/s decode"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("artifact")
    ap.add_argument("--prompt", default="The for statement")
    ap.add_argument("--max-new-tokens", default="64")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", default="1")
    args = ap.parse_args(argv)
    edgekit = shutil.which("edgekit") or str(Path(sys.executable).parent / "edgekit")
    flags = ["--prompt", args.prompt, "--max-new-tokens", args.max_new_tokens, "--temperature", "0",
             "--threads", args.threads]
    rows: dict[str, list[tuple[float, float, float]]] = {"app": [], "python": []}
    texts: dict[str, set[str]] = {"app": set(), "python": set()}
    for _ in range(args.rounds):
        for side, cmd in (("app", [str(APP), args.artifact]), ("python", [edgekit, "generate", args.artifact])):
            t0 = time.perf_counter()
            r = subprocess.run(cmd + flags, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if r.returncode != 0:
                sys.stderr.write(r.stderr[-2000:])
                return 1
            m = re.search(PATTERNS[side], r.stderr)
            rows[side].append((wall, float(m[1]), float(m[2])))
            texts[side].add(r.stdout)
    same = len(texts["app"] | texts["python"]) == 1
    print(f"same text in every run: {same}")
    for side, v in rows.items():
        wall, prefill, decode = (statistics.median(x[i] for x in v) for i in range(3))
        print(f"{side}: process {wall:.2f} s, prefill {prefill:.0f} tok/s, decode {decode:.0f} tok/s "
              f"(medians of {len(v)} runs)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
