"""The packing stage (issue 31 item 5): a scored model dir of the recipe, whose config names its
files by absolute paths, packed by espnet2's own packer in espnet_model_zoo's layout with a model
card; no member names the machine, the card's figures are the score files' and model.pth's, and
the zip loads with pinch's held-model reader and with plain espnet2 (no pinch imported)."""
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch
import yaml

from espnet_tiny import tiny_cmd
from recipe_runs import DENSE_TAG, RECIPE
from test_pretrained_pack_trust import train_bpe, write_stats

RUN = "sspg_run"
ZIP = f"{RUN}_model.zip"
TOKEN_DIR = "data/token_list/bpe_unigram32"
STATS = "exp/asr_stats_raw_bpe32/train/feats_stats.npz"
REFS = ["a cat sat on the mat", "the dog ate a bone", "birds sing at dawn", "she reads a book"]
HYPS = {"test_a": ["a cat sat on a mat", "the dog ate a bone", "birds sing at", "she reads the book"],
        "test_b": ["a cat sat on the mat", "the dog a bone", "birds sing at dawn", "she reads a book"]}
COMMAND = "./run.sh --stage 12 --pretrained {root}/held/asr_mine.zip --test_sets 'test_a test_b'"


@pytest.fixture(scope="module")
def recipe_dir(tmp_path_factory):
    """A recipe dir after scoring: a baked model dir (config.yaml naming its BPE model and
    statistics by absolute paths, as a recipe run with an absolute --expdir writes it, with its
    data, output dir and initial weights), sparsity.json, RESULTS.md, two test sets scored by
    pinch.scoring as the recipe's score_set scores them, and the deploy stage's DEPLOY.json."""
    from pinch.offline import forbid_downloads

    forbid_downloads()  # espnet2's tasks import g2p_en, which would try NLTK's downloader
    from espnet2.tasks.asr import ASRTask
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    from pinch.scoring.sclite import score

    root = tmp_path_factory.mktemp("recipe")
    baked = root / "exp" / RUN / "baked"
    for d in (root / TOKEN_DIR, (root / STATS).parent, baked, root / "conf"):
        d.mkdir(parents=True)
    # by absolute paths, as many a held model's was trained: sentencepiece keeps them in the model
    pieces = train_bpe(root / TOKEN_DIR / "bpe", 32)
    (root / TOKEN_DIR / "bpe.vocab").unlink()
    tokens = ["<blank>", "<unk>", *(p for p in pieces if p not in ("<unk>", "<s>", "</s>")), "<sos/eos>"]
    (root / TOKEN_DIR / "tokens.txt").write_text("".join(f"{t}\n" for t in tokens))
    write_stats(root / STATS, 0)
    cmd = tiny_cmd("--input_size", "none", "--frontend_conf", "n_mels=20", "--token_type", "bpe",
                   "--bpemodel", str(root / TOKEN_DIR / "bpe.model"), "--normalize", "global_mvn",
                   "--normalize_conf", f"stats_file={root / STATS}",
                   "--train_data_path_and_name_and_type", f"{root}/dump/raw/train/wav.scp,speech,sound",
                   "--init_param", f"{root}/exp/asr_dense/valid.loss.ave.pth", "--output_dir", str(root / "exp" / RUN))
    cmd[1:1] = [str(root / TOKEN_DIR / "tokens.txt")]
    args = ASRTask.get_parser().parse_args(cmd)
    torch.manual_seed(0)
    model = ASRTask.build_model(args)  # args.token_list: the list itself, as espnet2 saves it
    state, gated, zeros = model.state_dict(), 0, 0
    for name, value in state.items():  # half of each encoder matrix's rows zero, as a baked model's
        if name.startswith("encoder.encoders.") and name.endswith(".weight") and value.dim() == 2:
            value[: value.shape[0] // 2] = 0
            gated, zeros = gated + value.numel(), zeros + value[: value.shape[0] // 2].numel()
    torch.save(state, baked / "model.pth")
    with open(baked / "config.yaml", "w") as f:
        yaml_no_alias_safe_dump(vars(args), f)
    (baked / "sparsity.json").write_text(json.dumps(
        {"method": "sspg", "target_sparsity": 0.5, "sparsity_gated": zeros / gated, "gated_params": gated}))
    (baked / "RESULTS.md").write_text(f"# RESULTS\n## {baked}\n")  # as show_asr_result heads it under an absolute --expdir
    shutil.copy(RECIPE / "conf" / "decode_ctc.yaml", root / "conf")
    for dset, hyps in HYPS.items():
        ref, out = root / "dump" / "raw" / dset / "text", baked / DENSE_TAG / dset
        for path, texts in ((ref, REFS), (out / "text", hyps)):
            path.parent.mkdir(parents=True)
            path.write_text("".join(f"utt{i} {t}\n" for i, t in enumerate(texts)))
        score(ref, out / "text", out / "score_wer")
    row = {"form": "onnx int8_static", "runtime": "onnxruntime", "size_mb": 1.23, "latency_ratio": 1.77,
           "latency_ratio_range": [1.71, 1.79], "latency_ms": 3.05}
    (root / "exp" / "DEPLOY.json").write_text(json.dumps({"note": "Latency: onnxruntime, 1 thread.", "rows": [
        {**row, "model": f"{RUN}/baked"}, {**row, "model": "asr_dense", "latency_ratio": 1.0}]}))
    return root


def pack(root, *extra, model_dir=f"exp/{RUN}/baked"):
    """The packer as the recipe calls it, from the recipe dir with relative paths: (exit code, stderr)."""
    from pinch.espnet.bin.pack import main

    err = root / "pack.stderr"
    with contextlib.chdir(root), open(err, "w") as f, contextlib.redirect_stderr(f):
        code = main(["--asr_train_config", f"{model_dir}/config.yaml", "--asr_model_file", f"{model_dir}/model.pth",
                     "--inference_config", "conf/decode_ctc.yaml", "--inference_tag", DENSE_TAG,
                     "--test_sets", *HYPS, "--command", COMMAND.format(root=root), *extra])
    return code, err.read_text()


@pytest.fixture(scope="module")
def packed(recipe_dir):
    code, err = pack(recipe_dir, "--deploy_json", "exp/DEPLOY.json")
    assert code == 0, err
    path = recipe_dir / "exp" / RUN / "baked" / "packed" / ZIP
    with zipfile.ZipFile(path) as z:
        return {"path": path, "members": {n: z.read(n) for n in z.namelist()},
                "readme": z.read("README.md").decode()}


def test_the_zip_has_espnet_model_zoos_layout(packed):
    members = packed["members"]
    meta = yaml.safe_load(members["meta.yaml"])
    assert meta["yaml_files"] == {"asr_train_config": f"exp/{RUN}/config.yaml"}
    assert meta["files"] == {"asr_model_file": f"exp/{RUN}/model.pth"}
    assert set(members) == {"meta.yaml", "README.md", f"exp/{RUN}/config.yaml", f"exp/{RUN}/model.pth",
                            f"{TOKEN_DIR}/bpe.model", "exp/asr_stats/train/feats_stats.npz",
                            "conf/decode_ctc.yaml", f"exp/{RUN}/RESULTS.md", f"exp/{RUN}/sparsity.json"}
    config = yaml.safe_load(members[f"exp/{RUN}/config.yaml"])
    assert config["bpemodel"] == f"{TOKEN_DIR}/bpe.model"
    assert config["normalize_conf"]["stats_file"] == "exp/asr_stats/train/feats_stats.npz"
    assert not {"init_param", "output_dir", "config", "train_data_path_and_name_and_type"} & set(config)
    assert list(packed["path"].parent.iterdir()) == [packed["path"]], "a staging dir or part file was left"
    # RESULTS.md names the model by its member dir, not by where the recipe ran
    assert members[f"exp/{RUN}/RESULTS.md"].decode() == f"# RESULTS\n## exp/{RUN}\n"


def test_no_member_holds_a_path_of_the_machine(packed, recipe_dir):
    tmp_root = str(recipe_dir.parent)  # pytest's base temp dir: every file of the test is under it
    for name, data in packed["members"].items():
        assert tmp_root.encode() not in data, name
    assert "--pretrained asr_mine.zip" in packed["readme"]


def test_the_card_gives_the_scored_wer_the_zeros_of_model_pth_and_the_sizes(packed, recipe_dir):
    readme, baked = packed["readme"], recipe_dir / "exp" / RUN / "baked"
    for dset in HYPS:
        result = json.loads((baked / DENSE_TAG / dset / "score_wer" / "result.json").read_text())
        row = next(line for line in readme.splitlines() if line.startswith(f"|{dset}|")).split("|")[1:-1]
        assert row[3:] == [f"{result['wer']:.2f}", f"{result['cer']:.2f}", f"{result['normalized']['wer']:.2f}",
                           f"{result['normalized']['cer']:.2f}"], row
        assert result["wer"] > 0
    state = torch.load(baked / "model.pth", weights_only=True)
    values = [v for v in state.values() if v.is_floating_point()]
    total, nonzero = sum(v.numel() for v in values), sum(int((v != 0).sum()) for v in values)
    assert f"whole model: {1 - nonzero / total:.2%} zeros: {nonzero:,} of the {total:,} values" in readme
    record = json.loads((baked / "sparsity.json").read_text())
    assert f"gated matrices: {record['sparsity_gated']:.2%} zeros" in readme
    assert f"this zip: {packed['path'].stat().st_size:,} bytes" in readme
    assert f"`exp/{RUN}/model.pth`: {(baked / 'model.pth').stat().st_size:,} bytes" in readme
    assert "|onnx int8_static|onnxruntime|1.23|1.77 [1.71, 1.79]|3.0" in readme and "|1.00 [" not in readme
    assert "not measured" in readme  # the PyTorch model's own speed


def test_the_card_states_the_zips_size_whatever_time_espnet2_stamps(recipe_dir, tmp_path, monkeypatch):
    """espnet2's meta.yaml holds the packing time as a float, whose repr runs from 12 to 17
    characters: the size a repack gives moves with it (seen in CI: repacking until the card's
    stated size matched did not settle in 4 passes). Here every pack stamps a time of another length."""
    import datetime
    import itertools

    from espnet2.main_funcs import pack_funcs

    stamps = itertools.cycle([1765130000.5, 1765130000.123457, 1765130000.25, 1765130000.987654])

    class Stamped(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls.fromtimestamp(next(stamps))

    monkeypatch.setattr(pack_funcs, "datetime", Stamped)
    out = tmp_path / "stamped.zip"
    code, err = pack(recipe_dir, "--outpath", str(out))
    assert code == 0, err
    with zipfile.ZipFile(out) as z:
        assert f"this zip: {out.stat().st_size:,} bytes" in z.read("README.md").decode()
        assert z.testzip() is None


def test_pinchs_held_model_reader_takes_the_zip(packed, tmp_path):
    from pinch.espnet.bin.pretrained import main

    assert main(["--pretrained", str(packed["path"]), "--out_dir", str(tmp_path / "held")]) == 0
    assert (tmp_path / "held" / "feats_stats.npz").is_file() and (tmp_path / "held" / "bpe.model").is_file()


PLAIN = """
import json, sys
import nltk
nltk.download = lambda *args, **kwargs: False  # g2p_en's import would fetch its data: the test runs offline
import numpy as np, yaml
from espnet2.bin.asr_inference import Speech2Text
from espnet2.main_funcs.pack_funcs import unpack
zip_path, out, config, model = sys.argv[1:]
files = unpack(zip_path, out)
decode = yaml.safe_load(open(out + "/conf/decode_ctc.yaml"))
speech = np.random.default_rng(0).normal(scale=0.1, size=32000).astype("float32")
packed = Speech2Text(**files, **decode)(speech)[0]
original = Speech2Text(asr_train_config=config, asr_model_file=model, **decode)(speech)[0]
assert not [m for m in sys.modules if m == "pinch" or m.startswith("pinch.")], "pinch was imported"
print(json.dumps({"packed": packed[2], "original": original[2]}))
"""


def test_plain_espnet2_decodes_the_unpacked_zip_as_the_model_dir(packed, recipe_dir, tmp_path):
    baked = recipe_dir / "exp" / RUN / "baked"
    proc = subprocess.run([sys.executable, "-c", PLAIN, str(packed["path"]), str(tmp_path / "unpacked"),
                           str(baked / "config.yaml"), str(baked / "model.pth")],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    decoded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert decoded["packed"] == decoded["original"]


def test_a_path_of_the_machine_left_in_a_member_refuses_the_pack(recipe_dir):
    other = recipe_dir / "exp" / "other" / "baked"
    shutil.copytree(recipe_dir / "exp" / RUN / "baked", other, ignore=shutil.ignore_patterns("packed"))
    (other / "RESULTS.md").write_text(f"# RESULTS\n## {other}\n- data: {recipe_dir / 'dump'}\n")  # a path beyond the model dir
    code, err = pack(recipe_dir, model_dir="exp/other/baked")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert re.search(r"member exp/other/RESULTS.md names /\S+/, a directory of this machine: not packed", err), err
    assert not list((other / "packed").iterdir()), "a refused pack left a file"


def test_without_a_measured_speed_the_card_says_so(recipe_dir, tmp_path):
    code, err = pack(recipe_dir, "--outpath", str(tmp_path / "asr.zip"))
    assert code == 0, err
    with zipfile.ZipFile(tmp_path / "asr.zip") as z:
        readme = z.read("README.md").decode()
    assert "## Speed\n\nNot measured.\n" in readme and 'unpack("asr.zip", "asr")' in readme
