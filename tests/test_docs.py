"""docs/ stands alone and its figures follow the result files (benchmarks/render_docs.py)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def _render_docs():
    spec = importlib.util.spec_from_file_location("render_docs", ROOT / "benchmarks" / "render_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_figure_blocks_are_in_sync_with_the_result_files():
    rd = _render_docs()
    assert rd.main(["--check"]) == 0, "docs are out of date: run python benchmarks/render_docs.py"
    # a stale figure is caught and rewritten from the JSON (the 2M .pte speed-up was once written as 2.1x)
    text, changed = rd.render("x (<!-- figures:pte_speedup -->2.1x<!-- /figures --> on a 2M model)")
    speedup = json.loads((ROOT / "docs" / "llm_results.json").read_text())["llama_pydoc"]["speedup"]
    assert changed == ["pte_speedup"] and f"{speedup:.2f}x<" in text and "2.1x" not in text
    blocks = sum(len(rd.BLOCK.findall(p.read_text())) for p in DOCS)
    assert blocks >= 12


def test_docs_point_at_nothing_outside_the_repository():
    bad = re.compile(r"/work/|/tmp/|/root/|/home/|shared/docs|ALGORITHMS\.md|SERVER\.md|BENCHMARKING\.md|"
                     r"ARCHITECTURE\.md|NATIVE\.md|STYLE\.md")
    hits = [f"{p.name}:{i}: {line.strip()[:80]}" for p in DOCS for i, line in enumerate(p.read_text().splitlines(), 1)
            if bad.search(line)]
    assert not hits, hits


def test_every_script_and_result_file_named_in_the_docs_exists():
    named = set()
    for p in DOCS:
        named |= set(re.findall(r"(?:benchmarks|docs)/[A-Za-z0-9_./-]+\.(?:py|json|md|png)", p.read_text()))
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert not missing, missing
    assert "docs/algorithms.md" in named and "benchmarks/render_docs.py" in named
