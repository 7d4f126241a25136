import json

from edgekit.cli import main


def test_compress_and_export_with_recipe_and_inspect(tmp_path, capsys):
    assert main(["compress", "resnet_tiny", "--recipe", "palettize4", "--out", str(tmp_path / "c")]) == 0
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert report["recipe"] == "palettize4" and len(report["layers"]) == 13
    assert main(["export", "resnet_tiny", "--recipe", "palettize4", "--target", "coreml",
                 "--out", str(tmp_path / "e")]) == 0
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "e" / "resnet_tiny" / "coreml")]) == 0
    out = capsys.readouterr().out
    assert "palettize4" in out and "constexpr_lut_to_dense" in out and "decompressed layers: 0" in out


def test_export_to_a_decompressing_target_fails_unless_allowed(tmp_path, capsys):
    assert main(["export", "resnet_tiny", "--recipe", "sparse50", "--target", "onnx", "--out", str(tmp_path)]) == 1
    assert "compression_lost" in capsys.readouterr().err
    assert main(["export", "resnet_tiny", "--recipe", "sparse50", "--target", "onnx", "--out", str(tmp_path),
                 "--allow-decompressed"]) == 0
