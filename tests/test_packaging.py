import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_mapped_in_pyproject():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dir = cfg["tool"]["setuptools"]["package-dir"]
    packages = set(cfg["tool"]["setuptools"]["packages"])
    for folder in ("exporters", "kernels", "model_zoo", "server"):
        assert package_dir[f"edgekit.{folder}"] == folder
    # every folder holding an __init__.py is listed as a package
    for init in ROOT.glob("*/**/__init__.py"):
        rel = init.parent.relative_to(ROOT)
        top, *rest = rel.parts
        if top in ("tests", "benchmarks", "docs") or top.startswith("."):
            continue
        name = ".".join(["edgekit"] + ([top] if top != "edgekit" else []) + rest)
        assert name in packages, f"{rel} is not listed as {name} in pyproject packages"


def test_distribution_name_cannot_pull_the_unrelated_pypi_edgekit():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert cfg["project"]["name"] != "edgekit"
    readme = (ROOT / "README.md").read_text()
    assert "pip install edgekit" not in readme


def test_constraints_pin_the_verified_set():
    pins = dict(line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().split() if "==" in line)
    assert pins["torch"].startswith("2.13.0")
    assert pins["executorch"] == "1.5.1"
    assert pins["coremltools"] == "9.0"
    assert pins["litert-torch"] == "0.10.0"
    assert pins["ai-edge-litert"] == "2.3.0"


def test_ci_runs_the_readme_test_command():
    quick_start = (ROOT / "README.md").read_text().split("```")[1]  # the first code block
    assert quick_start.split() == ["make", "demo", "make", "test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
