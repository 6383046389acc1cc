"""The ESPnet recipe end to end on the tiny embedded corpus with a tiny model (CPU).

One run through every stage (stages 1-11's dense model shared with the other recipe modules;
stage 11's compression and the dense control, then 12-15, this module's fixture) serves several tests: results written in ESPnet's format, a baked model that
unmodified espnet2 decodes exactly as the gated one, resume of a killed compression stage, and
the recipe's refusals of bad input. The sweep and pretrained-model tests: test_espnet_sweep.py.
"""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from recipe_runs import DENSE, DENSE_TAG, LATEST_TAG, RECIPE, TARGET, experiment_beside, kill_recipe_when, root_beside, run_recipe, written_whole


@pytest.fixture(scope="module")
def recipe(espnet_dense, tmp_path_factory):
    """Stages 11-15 (the dense control, sspg at TARGET, bake; decode, score, pack, deploy) from the
    shared dense model (stages 1-11, ``espnet_dense``), in a root of this module's own."""
    root = root_beside(espnet_dense, tmp_path_factory.mktemp("recipe"))
    experiment_beside(espnet_dense, root)
    proc = run_recipe(root, "--stage", "11", "--dense_control", "true")
    dense = root / "exp" / DENSE
    return {"root": root, "shared": espnet_dense, "dense": dense, "compressed": Path(f"{dense}_sspg{TARGET}"),
            "stderr": (espnet_dense / "stages_1-11.stderr").read_text() + proc.stderr}


def test_no_stage_tries_the_network(recipe):
    """Every espnet2 task imports g2p_en, which fetches NLTK data at import when it is missing;
    the recipe's steps refuse that instead of trying (pinch.offline)."""
    logs = {"stderr": recipe["stderr"]}
    for root in (recipe["shared"], recipe["root"]):
        logs.update({str(p): p.read_text(errors="replace") for p in root.rglob("*.log")})
    for name, text in logs.items():
        assert "urlopen" not in text and "Error loading" not in text, name


def test_every_stage_leaves_espnet_results(recipe):
    dense, comp = recipe["dense"], recipe["compressed"]
    # decode dirs named after the checkpoint decoded: the dense model's average, the pass's last epoch
    for model_dir, decode in ((dense, DENSE_TAG), (comp / "baked", LATEST_TAG)):
        assert (model_dir / decode / "test_clean" / "text").is_file()
        # sclite's summaries where egs2's show_asr_result.sh reads them
        for score in ("score_wer", "score_cer"):
            assert "Sum/Avg" in (model_dir / decode / "test_clean" / score / "result.txt").read_text()
        text = (model_dir / "RESULTS.md").read_text()
        assert "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|" in text
        assert f"|{decode}/test_clean|" in text
        # WER per source (the recipe decodes test_clean here): each seen source has a row.
        assert "### WER by source" in text
        # scored as written and normalized, both named
        assert "### WER and CER, normalized" in text and "as written (case-sensitive)" in text
        assert f"|{decode}/test_clean|" in text.split("### WER and CER, normalized", 1)[1]
        for source in ("espeak-ng", "flite-awb", "flite-kal", "flite-slt", "festival-kal"):
            assert f"|{decode}/test_clean|{source}|" in text
    rows = json.loads((recipe["root"] / "results" / "results.json").read_text())
    assert [r["method"] for r in rows] == ["dense", "dense_finetune", "sspg"]
    assert all("corpus=embedded" in r["notes"] for r in rows)
    pruned = rows[2]
    # the sparsity the pass reached: bake rescales nothing onto the target
    assert pruned["sparsity_trained"] == pruned["sparsity"] and abs(pruned["sparsity"] - float(TARGET)) < 0.01
    assert pruned["nonzero_params"] < rows[0]["nonzero_params"]
    # What a user downloads shrinks with the zeros: by at least half the 4 bytes of each weight
    # pruned (measured: 0.76 on the tiny NeMo model, 0.79 on random float32 at 50-65% zeros; the
    # tiny models' containers keep the dense download at 0.55-0.68 of the file, not 0.93).
    zeroed = rows[0]["nonzero_params"] - pruned["nonzero_params"]
    assert (rows[0]["download_mb"] - pruned["download_mb"]) * 1e6 > 0.5 * 4 * zeroed > 0
    # the row's verdict is the MAPSSWE test the scoring stage wrote against the control
    compare = json.loads((comp / "baked" / LATEST_TAG / "test_clean" / "mapsswe_vs_dense_finetune" /
                          "compare.json").read_text())
    assert pruned["significance"]["test_clean"] == {"p_value": compare["p_value"], "lossless": compare["lossless"],
                                                     "reference_hyps": compare["hyp_a_sha256"][:16]}
    # The dense control had the compression pass's training without pruning, and the
    # compressed model is tested against it as well as against the dense model.
    control_log = (Path(f"{dense}_finetune") / "train.log").read_text()
    assert "--init_param" in control_log and "loss_sparsity" not in control_log
    # The verdict is against the equally trained control, and says so; the other test is a note.
    assert pruned["reference"] == "dense_finetune"
    assert "vs dense on test_clean: p=" in pruned["notes"]
    results = (comp / "baked" / "RESULTS.md").read_text()
    assert "|test_clean|dense|" in results and "|test_clean|dense_finetune|" in results
    assert "verdict is against `dense_finetune`" in results
    # the recipe-level RESULTS.md: every model's section, in decoding order
    recipe_results = (recipe["root"] / "exp" / "RESULTS.md").read_text()
    sections = [line for line in recipe_results.splitlines() if line.startswith("## ")]
    assert sections == ["## Environments", f"## {dense}", f"## {dense}_finetune", f"## {comp}/baked"]
    assert f"|{LATEST_TAG}/test_clean|" in recipe_results
    # Stage 14: the compressed model packed with a model card, and its deflated download form.
    packed = comp / "baked" / "packed" / f"{comp.name}.zip"
    download = packed.parent / "download" / packed.name
    with zipfile.ZipFile(packed) as z:
        assert "meta.yaml" in z.namelist() and "WER" in z.read("README.md").decode()
    with zipfile.ZipFile(download) as z:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    assert download.stat().st_size < packed.stat().st_size
    # The schedule's scalars reached espnet2's training log.
    log = (comp / "train.log").read_text()
    assert all(f"{k}=" in log for k in ("loss_sparsity", "sparsity", "eta", "tau"))
    # The baked model is the pass's last epoch, not espnet2's average of its best epochs (which
    # mixes in an earlier, less pruned one).
    assert "/latest.pth -> " in (comp / "bake.log").read_text()
    assert (comp / "latest.pth").resolve().name == "4epoch.pth"  # FINETUNE's --max_epoch 4
    key = "encoder.after_norm.weight"  # not gated: baking leaves it as trained
    assert torch.equal(torch.load(comp / "baked" / "model.pth")[key], torch.load(comp / "latest.pth")[key])


def test_deploy_stage_exports_every_model_and_shrinks_a_structured_run(recipe):
    root, dense = recipe["root"], recipe["dense"]
    rows = json.loads((root / "exp" / "DEPLOY.json").read_text())["rows"]
    systems = [dense.name, f"{dense.name}_sspg{TARGET}/baked"]  # not the dense control
    assert [(r["model"], r["form"], r["runtime"]) for r in rows] == [
        (s, f"onnx {f}", "onnxruntime") for s in systems for f in ("fp32", "int8", "int8_static")]
    assert all(set(r["wer"]) == set(r["vs_dense"]) == {"test_clean"} for r in rows)
    assert rows[1]["size_mb"] < rows[0]["size_mb"] and rows[2]["size_mb"] < rows[0]["size_mb"]  # int8 below fp32
    # A structured run from the same dense model: baked (masked) for espnet2, shrunk for ONNX.
    run_recipe(root, "--stage", "11", "--granularity", "structured")
    structured = Path(f"{dense}_sspg{TARGET}_structured")
    sparsity = json.loads((structured / "baked" / "sparsity.json").read_text())
    assert sparsity["sparsity_gated"] > 0.02  # few tiny updates: some groups pruned, not the target
    assert (structured / "baked" / LATEST_TAG / "test_clean" / "text").is_file()
    rows = json.loads((root / "exp" / "DEPLOY.json").read_text())["rows"]
    shrunk = [r for r in rows if r["model"] == f"{structured.name}/baked"]
    assert [r["form"] for r in shrunk] == ["onnx fp32", "onnx int8", "onnx int8_static"]
    assert shrunk[0]["size_mb"] < rows[0]["size_mb"], "the shrunk graph is smaller than the dense one"


def test_baked_dir_is_plain_espnet(recipe):
    baked = recipe["compressed"] / "baked"
    config = yaml.safe_load((baked / "config.yaml").read_text())
    assert not {"pruning", "pruning_conf", "pruning_config"} & set(config)
    state = torch.load(baked / "model.pth", map_location="cpu")
    assert not [k for k in state if k.endswith("_threshold") or k.endswith("pinch_steps")]


def test_finished_results_are_kept_without_overwrite(recipe):
    table = recipe["root"] / "results" / "results.json"
    results_md = recipe["compressed"] / "baked" / "RESULTS.md"
    before, before_md = table.read_text(), results_md.read_text()
    proc = run_recipe(recipe["root"], "--stage", "13", "--stop_stage", "15")
    assert "skipping (pass --overwrite true to redo)" in proc.stderr
    assert table.read_text() == before
    assert results_md.read_text() == before_md  # not even its date refreshed


def test_stage_12_decodes_and_never_trains(recipe):
    """asr.sh's numbers: an egs2 user's --stage 12 re-decodes; no training starts."""
    comp = recipe["compressed"]
    before = {p: p.stat().st_mtime_ns for p in (comp / "train.log", comp / "latest.pth", comp / "baked" / "model.pth")}
    proc = run_recipe(recipe["root"], "--stage", "12", "--stop_stage", "12")
    assert "Stage 12: Decoding with unmodified espnet2.bin.asr_inference" in proc.stderr
    assert f"{recipe['dense']}/{DENSE_TAG}/test_clean/text exists; skipping" in proc.stderr
    assert "Stage 11" not in proc.stderr and "training jobs" not in proc.stderr
    assert before == {p: p.stat().st_mtime_ns for p in before}


PLAIN_DECODE = """
import json, sys
from espnet2.bin.asr_inference import Speech2Text
import soundfile
s2t = Speech2Text(asr_train_config=sys.argv[1], asr_model_file=sys.argv[2], beam_size=1,
                  ctc_weight=1.0, lm_weight=0.0)
hyps = {}
for line in open(sys.argv[3]):
    utt, path = line.split()
    hyps[utt] = s2t(soundfile.read(path)[0])[0][0]
assert not [m for m in sys.modules if m == "pinch" or m.startswith("pinch.")], "pinch was imported"
print(json.dumps(hyps))
"""


def test_baked_model_decodes_with_plain_espnet2_as_the_gated_one(recipe, tmp_path, monkeypatch):
    import espnet2.bin.asr_inference as asr_inference
    import soundfile

    from pinch.espnet.bin.bake import bake_model_dir
    from pinch.espnet.tasks.asr import ASRTask

    comp = recipe["compressed"]
    checkpoint = comp / "valid.loss.ave.pth"
    summary = bake_model_dir("asr", comp / "config.yaml", checkpoint, tmp_path / "baked")
    assert summary["sparsity_gated"] > 0.3, "the comparison needs a really pruned model"
    wav_scp = recipe["root"] / "dump" / "raw" / "test_clean" / "wav.scp"

    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", PLAIN_DECODE, str(tmp_path / "baked" / "config.yaml"),
         str(tmp_path / "baked" / "model.pth"), str(wav_scp)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain = json.loads(proc.stdout.strip().splitlines()[-1])

    # The gated model: espnet2's Speech2Text building the model through pinch's task.
    monkeypatch.setattr(asr_inference, "ASRTask", ASRTask)
    s2t = asr_inference.Speech2Text(asr_train_config=str(comp / "config.yaml"),
                                    asr_model_file=str(checkpoint), beam_size=1,
                                    ctc_weight=1.0, lm_weight=0.0)
    assert any(n.endswith("weight_threshold") for n, _ in s2t.asr_model.named_parameters())
    gated = {}
    for line in wav_scp.read_text().splitlines():
        utt, path = line.split()
        gated[utt] = s2t(soundfile.read(path)[0])[0][0]
    assert gated == plain


def test_resume_after_killed_compression_reaches_same_sparsity(recipe, tmp_path):
    root, exp = recipe["root"], experiment_beside(recipe["root"], tmp_path)
    comp = exp / recipe["compressed"].name
    # Written at the end of epoch 1; killed once written whole (a truncated one is set
    # aside and the training starts over: tests/espnet/test_espnet_training.py).
    stage11 = ("--expdir", str(exp), "--stage", "11", "--stop_stage", "11", "--dense_control", "false")
    kill_recipe_when(root, stage11, lambda: written_whole(comp / "checkpoint.pth"), "compression")
    assert not (comp / "valid.loss.ave.pth").exists()
    run_recipe(root, *stage11)
    assert "The training was resumed" in (comp / "train.log").read_text()
    # The killed attempt's time is counted (up to its log's last write), then the resumed one.
    attempts = [int(x) for x in (comp / "wall_time_s").read_text().split()]
    assert len(attempts) == 2 and attempts[0] >= 1 and not (comp / ".attempt_start").exists()

    def final(d):
        state = torch.load(d / "valid.loss.ave.pth", map_location="cpu")
        gated = [k[: -len("_threshold")] for k in state if k.endswith("_threshold")]
        kept = sum(int((state[k].square() >= state[k + "_threshold"].square()).sum()) for k in gated)
        return int(state["pinch_steps"]), 1 - kept / sum(state[k].numel() for k in gated)

    steps, sparsity = final(comp)
    ref_steps, ref_sparsity = final(recipe["compressed"])
    assert steps == ref_steps
    assert abs(sparsity - ref_sparsity) < 1e-3


def test_checkpoints_are_read_as_data_by_every_espnet_entry_point(recipe, tmp_path):
    """A pickle that would create a file, given where pinch takes a checkpoint: refused by name."""
    from tests.evil import write_evil_checkpoint

    comp, dense = recipe["compressed"], recipe["dense"]
    marker = tmp_path / "pwned"
    evil = write_evil_checkpoint(tmp_path / "evil.pth", marker)
    bake = [sys.executable, "-m", "pinch.espnet.bin.bake", "--train_config", str(comp / "config.yaml")]
    show = [sys.executable, str(RECIPE / "local" / "show_asr_result.py"), "--model_dir", str(dense),
            "--inference_tag", DENSE_TAG, "--test_sets", "test_clean",
            "--config", str(dense / "config.yaml"), "--results_table", str(tmp_path / "results"),
            "--overwrite", "true", "--data_dir", str(recipe["root"] / "dump" / "raw")]
    dense_model = str(dense / "valid.loss.ave.pth")
    for cmd in (bake + ["--model_file", str(evil), "--out_dir", str(tmp_path / "a")],
                bake + ["--model_file", str(comp / "valid.loss.ave.pth"), "--mask_from", str(evil),
                        "--out_dir", str(tmp_path / "b")],
                show + ["--model_file", str(evil), "--dense_model", dense_model],
                show + ["--model_file", dense_model, "--dense_model", str(evil)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=RECIPE)
        assert proc.returncode != 0 and "evil.pth: cannot read as a weights-only" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert not marker.exists()
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_corrupt_results_table_stops_stage_13_with_the_writers_message(recipe, tmp_path):
    table = tmp_path / "results"
    table.mkdir()
    (table / "results.json").write_text("{not json")
    dense = recipe["dense"]
    proc = subprocess.run([sys.executable, str(RECIPE / "local" / "show_asr_result.py"), "--model_dir", str(dense),
                           "--inference_tag", DENSE_TAG, "--test_sets", "test_clean",
                           "--config", str(dense / "config.yaml"), "--model_file", str(dense / "valid.loss.ave.pth"),
                           "--results_table", str(table), "--overwrite", "true",
                           "--dense_model", str(dense / "valid.loss.ave.pth"), "--data_dir", str(recipe["root"] / "dump" / "raw")],
                          capture_output=True, text=True, cwd=RECIPE)
    assert proc.returncode != 0 and "results.json: not valid JSON" in proc.stderr and "Traceback" not in proc.stderr


def test_preset_matching_no_layer_stops_compression_with_its_name(recipe):
    proc = run_recipe(recipe["root"], "--stage", "11", "--stop_stage", "11", "--target_sparsity", "0.6",
                      "--compress_args", "--pruning_conf preset=wav2vec2", check=False)
    assert proc.returncode != 0
    assert "preset 'wav2vec2' matches no Linear/Conv/RNN layer of ESPnetASRModel" in proc.stderr


@pytest.mark.parametrize(
    "options,message",
    [
        (["--no_such_option", "1"], "unknown option --no_such_option"),
        (["--target_sparsity", "1.5"], "target sparsity '1.5' must be a number in [0, 1)"),
        (["--sweep", "0.5 abc"], "target sparsity 'abc'"),
        (["--pruning", "magic"], "no preset"),
        (["--corpus", "librispeech"], "--corpus librispeech needs --librispeech_dir"),
        (["--test_sets", "test_loud"], "has no set 'test_loud'"),
        (["--overwrite", "yes"], "--overwrite must be true or false"),
        (["--dense_control", "1"], "--dense_control must be true or false"),
        (["--stage", "12", "--stop_stage", "12"], "run stage 11 first"),
        (["--stage", "14", "--stop_stage", "14"], "run stage 11 first"),
        (["--stage", "15", "--stop_stage", "1"], "no stage would run"),
        (["--nbpe", "abc"], "--nbpe must be a positive integer"),
        (["--PATH", "/nowhere"], "unknown option --PATH"),
        (["--help_message", "x"], "unknown option --help_message"),
        (["--seed", "-1"], "--seed must be a non-negative integer"),
        (["--nj", "0"], "--nj must be a positive integer, not '0'"),
        (["--train_nj", "0"], "--train_nj must be a positive integer, not '0'"),
        (["--gpu_inference", "yes"], "--gpu_inference must be true or false, not 'yes'"),
        (["--compress_seeds", "1 x"], "--compress_seeds: 'x' is not a non-negative integer"),
        (["--compress_epochs", "4 0"], "--compress_epochs: '0' is not a positive integer"),
        (["--cmd_backend", "pbs"], "--cmd_backend must be local or slurm, not 'pbs'"),
        (["--nproc_per_node", "2"], "data-parallel training runs in Slurm jobs (--cmd_backend slurm)"),
        (["--num_nodes", "0"], "--num_nodes must be a positive integer, not '0'"),
        (["--cmd_backend", "slurm", "--ngpu", "2", "--nproc_per_node", "4"],
         "data-parallel training runs one process per GPU (--nproc_per_node 2)"),
    ],
)
def test_bad_input_stops_with_its_name(tmp_path, options, message):
    proc = run_recipe(tmp_path, *options, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_a_character_model_gets_its_token_list_at_stage_5(espnet_dense, tmp_path):
    """--token_type char (as asr.sh's: a duration aligner for the TTS recipe is one) makes
    data/token_list/char/tokens.txt: <blank> and <unk> first, <sos/eos> last, a character each,
    <space> between words; another token type is refused by name."""
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    for d in (espnet_dense / "data").iterdir():  # the shared corpus, read only; a token list of its own
        if d.name != "token_list":
            (root / "data" / d.name).symlink_to(d)
    (root / "dump").symlink_to(espnet_dense / "dump")
    run_recipe(root, "--token_type", "char", "--stage", "5", "--stop_stage", "5")
    tokens = (root / "data" / "token_list" / "char" / "tokens.txt").read_text().split()
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>" and "<space>" in tokens
    assert all(len(t) == 1 for t in tokens[2:-1] if t != "<space>") and "a" in tokens
    refused = run_recipe(root, "--token_type", "word", "--stage", "5", "--stop_stage", "5", check=False)
    assert refused.returncode != 0 and "--token_type must be bpe or char, not 'word'" in refused.stderr
