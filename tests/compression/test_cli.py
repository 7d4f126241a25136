import json

from edgekit.cli import main


def test_compress_and_export_with_recipe_and_inspect(tmp_path, capsys):
    assert main(["compress", "resnet_tiny", "--recipe", "palettize4", "--out", str(tmp_path / "c")]) == 0
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert report["recipe"] == "palettize4" and len(report["layers"]) == 13
    assert main(["export", "resnet_tiny", "--recipe", "palettize4", "--target", "coreml",
                 "--out", str(tmp_path / "e")]) == 0
    out, err = capsys.readouterr()
    assert "fidelity (artifact vs compressed model): structural ok" in err
    assert "cost (artifact vs original model): ok output_0 (classes) top1_flip 0.000" in err
    assert "[on the compressed PyTorch model]" in out
    assert main(["inspect", str(tmp_path / "e" / "resnet_tiny" / "coreml")]) == 0
    out = capsys.readouterr().out
    assert "palettize4" in out and "constexpr_lut_to_dense" in out and "decompressed layers: 0" in out
    # Core ML cannot run here: the cost is measured on the compressed PyTorch model, and says so
    assert "cost       output_0 (classes): top1_flip 0.0000" in out



def test_export_to_a_decompressing_target_fails_unless_allowed(tmp_path, capsys):
    assert main(["export", "resnet_tiny", "--recipe", "sparse50", "--target", "onnx", "--out", str(tmp_path)]) == 1
    assert "compression_lost" in capsys.readouterr().err
    # allowed, the untrained resnet_tiny then fails the cost gate: 50% pruning changes every top-1 class
    assert main(["export", "resnet_tiny", "--recipe", "sparse50", "--target", "onnx", "--out", str(tmp_path),
                 "--allow-decompressed", "--parity-samples", "8"]) == 1
    err = capsys.readouterr().err
    assert "[compression_cost]" in err and "top1_flip 1 > max 0.1 (8 of 8 samples" in err
    assert not (tmp_path / "resnet_tiny").exists()  # a failed export leaves no empty OUT/<model>/
    assert main(["export", "resnet_tiny", "--recipe", "sparse50", "--target", "onnx", "--out", str(tmp_path),
                 "--allow-decompressed", "--max-loss", "top1_flip=1", "--parity-samples", "8"]) == 0
    err = capsys.readouterr().err
    assert "fidelity (artifact vs compressed model): ok cos 1.0000000 top1 100.0%" in err
    assert "cost (artifact vs original model): ok output_0 (classes) top1_flip 1.000" in err
