"""Download forms (issue 33 item 4): a 65%-sparse model's files compressed are much smaller than
stored (a dense twin's barely), give back the same bytes, open with standard tools (tar, gunzip)
and onnxruntime, and the deployment table gives each form's download size beside its size."""
import filecmp
import json
import subprocess
import zipfile

import numpy as np
import pytest
import torch

from pinch.deploy import onnx_session, quantize_int8, write_download
from pinch.deploy import report
from pinch.deploy.download import gzip_size
from pinch.deploy.table import FORMS

SPARSITY = 0.65
TOKENS = "".join(f"t{i} {i}\n" for i in range(32))


class Net(torch.nn.Module):
    """Features in, per-frame token scores out: ~320k weights, matrices ``sparsity`` zeros (a
    baked model's, by magnitude) or dense."""

    def __init__(self, sparsity):
        super().__init__()
        torch.manual_seed(0)
        self.layers = torch.nn.Sequential(torch.nn.Linear(80, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                                          torch.nn.ReLU(), torch.nn.Linear(512, 32))
        with torch.no_grad():
            for layer in self.layers[::2]:
                w = layer.weight
                if sparsity:
                    w.mul_(w.abs() > w.abs().flatten().kthvalue(int(sparsity * w.numel())).values)

    def forward(self, feats, feats_lengths):
        return self.layers(feats) * (feats_lengths > 0).float()[:, None, None]  # both inputs in the graph


def feeds(frames=50, seed=0):
    rng = np.random.default_rng(seed)
    return {"feats": rng.standard_normal((1, frames, 80), dtype=np.float32), "feats_lengths": np.array([frames])}


def export_forms(model_dir, sparsity):
    """``<model_dir>/onnx``: fp32, int8 and static int8 graphs and tokens.txt, as the exporters write them."""
    onnx = model_dir / "onnx"
    onnx.mkdir(parents=True)
    torch.onnx.export(Net(sparsity), (torch.randn(1, 20, 80), torch.tensor([20])), str(onnx / FORMS["fp32"]),
                      input_names=["feats", "feats_lengths"], output_names=["out"], opset_version=17, dynamo=False,
                      dynamic_axes={"feats": {0: "batch", 1: "time"}, "feats_lengths": {0: "batch"}})
    quantize_int8(onnx / FORMS["fp32"], onnx / FORMS["int8"], feeds())
    quantize_int8(onnx / FORMS["fp32"], onnx / FORMS["int8_static"], feeds(),
                  calibration=[feeds(30, seed) for seed in range(4)])
    (onnx / "tokens.txt").write_text(TOKENS)
    return onnx


def test_onnx_forms_download_as_tar_bz2_that_tar_unpacks_and_onnxruntime_runs(tmp_path):
    ratios = {}
    for name, sparsity in (("dense", 0), ("sparse", SPARSITY)):
        onnx = export_forms(tmp_path / name, sparsity)
        for form in ("fp32", "int8"):
            files = [onnx / FORMS[form], onnx / "tokens.txt"]
            archive = tmp_path / "download" / f"{name}-{form}.tar.bz2"
            size = write_download(files, archive)
            assert size == archive.stat().st_size
            ratios[name, form] = size / sum(f.stat().st_size for f in files)
            unpacked = tmp_path / "unpacked"
            unpacked.mkdir(exist_ok=True)
            subprocess.run(["tar", "-xjf", str(archive), "-C", str(unpacked)], check=True)
            folder = unpacked / f"{name}-{form}"
            assert sorted(p.name for p in folder.iterdir()) == sorted(f.name for f in files)
            assert all(filecmp.cmp(f, folder / f.name, shallow=False) for f in files)
            expected, got = (onnx_session(path).run(None, feeds())[0] for path in (files[0], folder / files[0].name))
            np.testing.assert_array_equal(got, expected)
    # Measured: sparse 0.365 (fp32, 1.28 MB -> 0.47 MB) and 0.497 (int8, 0.33 -> 0.17 MB); dense 0.94 and 0.99.
    assert ratios["sparse", "fp32"] < 0.45 and ratios["sparse", "int8"] < 0.55
    assert ratios["dense", "fp32"] > 0.9 and ratios["dense", "int8"] > 0.9  # the zeros make the difference


def test_gz_and_deflated_zip_give_back_the_same_bytes(tmp_path):
    weights = tmp_path / "model.pth"
    torch.save(Net(SPARSITY).state_dict(), weights)  # torch's zip, records stored as the toolkits write them
    gz = tmp_path / "model.pth.gz"
    size = write_download(weights, gz)
    assert gzip_size(weights) == size  # the results tables' download column, counted without a file
    unzipped = subprocess.run(["gunzip", "-c", str(gz)], check=True, capture_output=True).stdout
    assert unzipped == weights.read_bytes()
    ratio_gz = size / weights.stat().st_size

    pack = tmp_path / "pack.zip"  # as espnet2's packer writes one: members stored
    with zipfile.ZipFile(pack, "w") as z:
        z.writestr("meta.yaml", "files:\n  asr_model_file: exp/run/model.pth\n")
        z.write(weights, "exp/run/model.pth")
    deflated = tmp_path / "download" / "pack.zip"
    size = write_download(pack, deflated)
    with zipfile.ZipFile(pack) as a, zipfile.ZipFile(deflated) as b:
        assert [(i.filename, i.date_time) for i in a.infolist()] == [(i.filename, i.date_time) for i in b.infolist()]
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in b.infolist())
        assert all(a.read(name) == b.read(name) for name in a.namelist())
    ratio_zip = size / pack.stat().st_size
    # Measured: 0.423 for both (1.28 MB -> 0.54 MB); a dense twin's 0.92.
    assert ratio_gz < 0.5 and ratio_zip < 0.5


def test_a_download_never_replaces_its_source_and_says_what_is_wrong(tmp_path):
    src = tmp_path / "model.nemo"
    src.write_bytes(b"\0" * 1000)
    for sources, out, message in (
        (src, src, "would overwrite source 1"),
        (src, tmp_path / "model.bin", r"ends in \.tar\.bz2, \.gz, \.zip"),
        ([src, src.with_name("x")], tmp_path / "two.gz", "no such file"),
        (src, tmp_path / "model.zip", "not a zip file"),
    ):
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            write_download(sources, out)
    src.with_name("x").write_bytes(b"x")
    with pytest.raises(ValueError, match="a .gz holds one file, 2 given"):
        write_download([src, src.with_name("x")], tmp_path / "two.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nemo", "x"]


def write_scores(model_dir, test_set):
    for form in FORMS:
        decode = model_dir / "onnx" / f"{form}_onnxruntime" / f"decode_{test_set}"
        for sub, record in (("score_wer", {"wer": 10.0}), ("mapsswe_vs_dense", {"p_value": 1.0, "lossless": True})):
            (decode / sub).mkdir(parents=True)
            (decode / sub / ("result.json" if sub == "score_wer" else "compare.json")).write_text(json.dumps(record))


def test_the_deployment_table_gives_the_download_size_of_each_form(tmp_path, capsys):
    exp = tmp_path / "exp"
    for name, sparsity in (("dense", 0), ("sspg", SPARSITY)):
        export_forms(exp / name, sparsity)
        write_scores(exp / name, "test")
    assert report.main(["--model_dirs", str(exp / "dense"), str(exp / "sspg"), "--runtimes", "onnxruntime",
                        "--test_sets", "test", "--out", str(exp / "DEPLOY.md")]) == 0
    rows = {(r["model"], r["form"]): r for r in json.loads((exp / "DEPLOY.json").read_text())["rows"]}
    for (name, form), row in rows.items():
        archive = exp / name / "onnx" / "download" / f"{name}-{form.split()[1]}.tar.bz2"
        assert row["download_mb"] == archive.stat().st_size / 1e6  # the archive's bytes, not an estimate
    # Measured (with tokens.txt in the archive): 0.365 of fp32's size, 0.497 of int8's, 0.498 of static int8's.
    assert rows["sspg", "onnx fp32"]["download_mb"] < 0.45 * rows["sspg", "onnx fp32"]["size_mb"]
    assert all(rows["sspg", f"onnx {form}"]["download_mb"] < 0.55 * rows["sspg", f"onnx {form}"]["size_mb"]
               for form in ("int8", "int8_static"))
    assert "| size MB | download MB |" in (exp / "DEPLOY.md").read_text()
