"""The NeMo recipe end to end on the tiny corpus, and its output loading without pinch."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asr_recipe_runs import DENSE, REPO, RUN, TINY, recipe_cmd, recipe_env

TARGET = 0.65


@pytest.fixture(scope="module")
def recipe(nemo_dense, tmp_path_factory):
    """Stages 4-9 from the shared dense model (stages 1-3, ``nemo_dense``) in a root of this
    module's own: its data the shared one, its exp a copy (the recipe transcribes into the dense
    model's dir)."""
    root = tmp_path_factory.mktemp("nemo_recipe")
    (root / "data").symlink_to(nemo_dense / "data")
    shutil.copytree(nemo_dense / "exp", root / "exp", symlinks=True)
    # A high learning rate and a fixed eta let the thresholds reach the target within the 9
    # updates of a tiny run (Adam moves each threshold by about lr per step); eta: auto,
    # which doubles eta over 2% of the run, reached only 0.57 in 9 updates. The eta goes to
    # the pruned run only (compress_args), which the dense control must not see.
    cmd = recipe_cmd(root, "--stage", "4", "--results_table", str(root / "results"), "--target_sparsity", str(TARGET),
                     "--finetune_args", f"{TINY} trainer.max_epochs=3 model.optim.lr=0.05",
                     "--compress_args", "model.pruning.eta=20")
    proc = subprocess.run(cmd, env=recipe_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return root, (nemo_dense / "stages_1-3.stderr").read_text() + proc.stderr


def test_recipe_stages_and_results(recipe):
    root, log = recipe
    for stage in range(1, 10):
        assert f"Stage {stage}" in log
    side = (root / "exp" / "compare_toolkits.md").read_text().splitlines()
    assert [line.split("|")[1].strip() for line in side[2:]] == ["dense", "dense_finetune", "sspg"]
    rows = json.loads((root / "results" / "results.json").read_text())
    assert [r["method"] for r in rows] == ["dense", "dense_finetune", "sspg"]
    dense, control, sspg = rows
    assert sspg["toolkit"] == "nemo" and sspg["target_sparsity"] == TARGET
    assert abs(sspg["sparsity"] - TARGET) < 0.02
    assert sspg["params"] == dense["params"] and sspg["nonzero_params"] < dense["nonzero_params"]
    # What a user downloads shrinks with the zeros: by at least half the 4 bytes of each weight
    # pruned (measured: 0.76 on the tiny NeMo model, 0.79 on random float32 at 50-65% zeros; the
    # tiny models' containers keep the dense download at 0.55-0.68 of the file, not 0.93).
    zeroed = dense["nonzero_params"] - sspg["nonzero_params"]
    assert (dense["download_mb"] - sspg["download_mb"]) * 1e6 > 0.5 * 4 * zeroed > 0
    assert set(sspg["wer"]) == set(sspg["significance"]) == {"test_clean", "test_other"}
    # "Lossless" is judged against the dense control (the compression pass without pruning),
    # the test against the shorter-trained dense model is a note.
    assert sspg["reference"] == "dense_finetune" and "vs dense on test_other: p=" in sspg["notes"]
    assert control["params"] == dense["params"] and "significance" not in control
    control_dir = root / "exp" / "conformer_ctc_bpe_unigram32_finetune"
    assert (control_dir / "model.nemo").is_file() and "loss_sparsity" not in (control_dir / "train.log").read_text()
    reached = (root / "exp" / f"conformer_ctc_bpe_unigram32_sspg{TARGET}" / "train.log").read_text().count(
        "pinch sspg: sparsity")
    assert reached == 1, f"the update that reached the target is logged once, not {reached} times"
    assert sspg["wall_time_s"] > 0
    run_dir = root / "exp" / f"conformer_ctc_bpe_unigram32_sspg{TARGET}"
    assert (run_dir / "gated.nemo").is_file() and (run_dir / "model.nemo").is_file()
    for dset in ("test_clean", "test_other"):
        hyp = (run_dir / f"decode_{dset}" / "hyp.txt").read_text().splitlines()
        ref = (root / "data" / dset / "text").read_text().splitlines()
        assert [h.split()[0] for h in hyp] == [r.split()[0] for r in ref]
    results = (run_dir / "RESULTS.md").read_text()
    assert "### WER by source" in results and "|test_other|festival-slt-hts|" in results
    assert "### WER and CER, normalized" in results and "|test_clean|" in results.split("normalized", 1)[1]
    leftovers = [p for p in (root / "exp").rglob(".*") if p.is_file() and ".nemo" in p.name]
    assert leftovers == []


def test_deploy_stage_exports_quantizes_and_scores_every_model_in_both_runtimes(recipe):
    root, _ = recipe
    table = json.loads((root / "exp" / "DEPLOY.json").read_text())["rows"]
    systems = ["conformer_ctc_bpe_unigram32", f"conformer_ctc_bpe_unigram32_sspg{TARGET}"]  # not the control
    assert [(r["model"], r["form"], r["runtime"]) for r in table] == [
        (s, f"onnx {f}", rt) for s in systems for f in ("fp32", "int8", "int8_static")
        for rt in ("onnxruntime", "sherpa-onnx")]
    dense_fp32 = table[0]
    assert dense_fp32["latency_ratio_range"] == [1.0, 1.0]
    int8 = [r for r in table if r["form"] in ("onnx int8", "onnx int8_static")]
    assert all(r["size_mb"] < dense_fp32["size_mb"] for r in int8)  # tiny: the filterbank and scales weigh
    for row in table:
        assert set(row["wer"]) == set(row["vs_dense"]) == {"test_clean", "test_other"}
    # onnxruntime on NeMo's own features reproduces the PyTorch decode of the same model.
    rows = json.loads((root / "results" / "results.json").read_text())
    pytorch = {r["system"]: r["wer"] for r in rows}
    for row in table:
        if row["form"] == "onnx fp32" and row["runtime"] == "onnxruntime":
            assert row["wer"] == pytorch[row["model"]], row["model"]
    assert "| onnx int8_static | sherpa-onnx |" in (root / "exp" / "DEPLOY.md").read_text()
    # The positional sinusoids are computed in the graph: no (1, 2 * 5000 - 1, d) table inside.
    import onnx

    graph = onnx.load(str(root / "exp" / systems[1] / "onnx" / "model.onnx")).graph
    tensors = list(graph.initializer) + [a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute]
    assert tensors and all(9999 not in t.dims for t in tensors)


def test_export_and_onnx_transcription_refuse_what_does_not_fit(recipe, tmp_path, capsys):
    from pinch.nemo.bin import export_onnx, onnx_transcribe

    root, _ = recipe
    run = root / "exp" / f"conformer_ctc_bpe_unigram32_sspg{TARGET}"
    assert export_onnx.main(["--model", str(run / "gated.nemo"), "--out_dir", str(tmp_path / "a")]) == 1
    assert "still has its gates; bake it first" in capsys.readouterr().err
    assert export_onnx.main(["--model", str(run / "gated.nemo"), "--shrink", "--out_dir", str(tmp_path / "b")]) == 1
    assert "shrink needs a model gated by a structured sspg Pruner" in capsys.readouterr().err
    assert export_onnx.main(["--model", str(run / "model.nemo"), "--shrink", "--out_dir", str(tmp_path / "c")]) == 1
    assert "no structured gates to shrink" in capsys.readouterr().err
    assert not any(tmp_path.rglob("*.onnx"))
    wrong = tmp_path / "tokens.txt"
    wrong.write_text("a 0\nb 1\n")
    hyp = tmp_path / "hyp.txt"
    assert onnx_transcribe.main(["--tokens", str(wrong), "--decode", str(run / "onnx" / "model.onnx"), "onnxruntime",
                                 str(root / "data" / "test_clean"), str(hyp)]) == 1
    assert "the token list 2: they do not belong together" in capsys.readouterr().err and not hyp.exists()


def test_rerun_skips_and_keeps_the_table(recipe):
    root, _ = recipe
    before = (root / "results" / "results.json").read_text()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run(
        [str(RUN), "--python", sys.executable, "--stage", "2", "--stop_stage", "6", "--size", "tiny",
         "--vocab_size", "32", "--datadir", str(root / "data"), "--expdir", str(root / "exp")],
        env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # tokenizer, dense model, control, gated model, baked model, 3 models x 2 test sets decoded
    assert proc.stderr.count("exists; skipping") == 11
    assert (root / "results" / "results.json").read_text() == before


def test_a_seeded_longer_sweep_run_records_its_seed_epochs_cost_history_and_hypotheses(recipe, tmp_path):
    """--compress_seeds and --compress_epochs: the run trains with its seed for its epochs in a
    dir of its own; its row carries the seed, the epochs, the optimizer steps, peak memory,
    sparsity over the whole model and the dense model's fingerprint; the details beside the
    table hold its hypotheses, layers and history."""
    root, _ = recipe
    table = tmp_path / "table"
    logged = TINY.replace("create_tensorboard_logger=false", "create_tensorboard_logger=true")
    proc = subprocess.run(
        recipe_cmd(root, "--results_table", str(table), "--stage", "4", "--stop_stage", "7",
                   "--dense_control", "false", "--pruning", "sspg", "--sweep", "0.5", "--compress_seeds", "3", "--compress_epochs", "3",
                   "--finetune_args", f"{logged} trainer.max_epochs=2 model.optim.lr=0.05",
                   "--compress_args", "model.pruning.eta=20"),
        env=recipe_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = root / "exp" / "conformer_ctc_bpe_unigram32_sspg0.5_seed3_ep3"
    log = (run_dir / "train.log").read_text()
    assert "Seed set to 3" in log and "`max_epochs=3` reached" in log  # not finetune_args' 2
    dense, run = json.loads((table / "results.json").read_text())
    assert run["system"] == run_dir.name and run["seed"] == 3 and run["epochs"] == 3
    assert run["granularity"] == "unstructured"
    assert run["steps"] > 0 and run["peak_rss_mb"] > 100 and 0 < run["model_sparsity"] < run["sparsity"]
    fixture_dense = json.loads((root / "results" / "results.json").read_text())[0]
    assert run["dense_fingerprint"] == dense["dense_fingerprint"] == fixture_dense["dense_fingerprint"]
    details = json.loads((table / "runs" / "nemo" / run["dense_fingerprint"] / f"{run_dir.name}.json").read_text())
    hyps = (run_dir / "decode_test_clean" / "hyp.txt").read_text()
    assert details["hyps"]["test_clean"] == hyps and set(details["hyps"]) == {"test_clean", "test_other"}
    assert details["layers"] and set(details["history"]) == {"sparsity", "eta", "tau"}
    assert (table / "runs" / "nemo" / run["dense_fingerprint"] / "ref_test_other.txt").read_text() == (
        root / "data" / "test_other" / "text").read_text()


def test_a_sweep_on_slurm_matches_the_local_run_and_a_rerun_resubmits_only_the_failed_job(recipe, tmp_path, slurm):
    """Two methods at one target through the Slurm backend (the test's own cluster, the shipped
    conf/slurm.conf with one CPU per job): trainings and transcriptions are Slurm job arrays; a job
    that fails is named with its log, the rerun resubmits it alone (as a data-parallel training of
    two srun tasks); the run the fixture made on this machine (sspg at 0.65, the same options)
    comes out the same."""
    root, _ = recipe
    exp, table = tmp_path / "exp", tmp_path / "table"
    exp.mkdir()
    (exp / DENSE).symlink_to(root / "exp" / DENSE)
    conf = tmp_path / "slurm.conf"
    conf.write_text((REPO / "conf" / "slurm.conf").read_text().replace("default num_threads=2", "default num_threads=1"))
    blocked = exp / f"conformer_ctc_bpe_unigram32_ump{TARGET}"
    blocked.write_text("")  # a file where a run's dir goes: its job fails
    env = recipe_env()
    cmd = recipe_cmd(root, "--expdir", str(exp), "--results_table", str(table), "--stage", "4", "--stop_stage", "7",
                     "--dense_control", "false", "--pruning", "sspg ump", "--sweep", f"{TARGET}", "--train_nj", "2",
                     "--finetune_args", f"{TINY} trainer.max_epochs=3 model.optim.lr=0.05",
                     "--compress_args", "model.pruning.eta=20", "--cmd_backend", "slurm", "--slurm_conf", str(conf))
    failed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert failed.returncode != 0
    assert "2 jobs submitted as Slurm job" in failed.stderr
    assert "1 of 2 stage4_training jobs failed:\n  JOB=2 (exit code 1; log: " in failed.stderr
    assert f"{exp}/logs/stage4_training.2.log: mkdir: cannot create directory" in failed.stderr
    blocked.unlink()
    again = subprocess.run(cmd + ["--nproc_per_node", "2"], env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Stage 4: 1 training jobs" in again.stderr and "1 jobs submitted as Slurm job" in again.stderr
    ddp = blocked
    assert "Starting with 2 processes" in (ddp / "train.log").read_text()  # Lightning's, under SLURMEnvironment
    assert len((ddp / "peak_rss_kb").read_text().split()) == 2
    assert "Stage 6: 2 transcription jobs" in again.stderr
    rows = json.loads((table / "results.json").read_text())
    assert sorted((r["method"], r.get("target_sparsity")) for r in rows) == [
        ("dense", None), ("sspg", TARGET), ("ump", TARGET)]
    local = next(r for r in json.loads((root / "results" / "results.json").read_text()) if r["method"] == "sspg")
    slurm_run = next(r for r in rows if r["method"] == "sspg" and r["target_sparsity"] == TARGET)
    for key in ("wer", "sparsity", "model_sparsity", "nonzero_params", "steps"):
        assert slurm_run[key] == local[key], key


# Runs in a fresh interpreter in which importing pinch fails: NeMo alone must do it all.
NO_PINCH = r"""
import importlib.abc, re, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pinch" or name.startswith("pinch."):
            raise ImportError("pinch is blocked in this process")

sys.meta_path.insert(0, Block())
from nemo.collections.asr.models import ASRModel, EncDecCTCModelBPE
model = ASRModel.restore_from(sys.argv[1], map_location="cpu")
assert type(model) is EncDecCTCModelBPE, type(model)
assert "pruning" not in model.cfg
gated = [p for n, p in model.named_parameters() if re.fullmatch(
    r"encoder\.layers\.\d+\.(self_attn\.linear_(q|k|v|out)|feed_forward[12]\.linear[12]|conv\.pointwise_conv[12])\.weight", n)]
assert not any(n.endswith("_threshold") for n, _ in model.named_parameters())
zeros = sum(int((p == 0).sum()) for p in gated) / sum(p.numel() for p in gated)
hyps = model.transcribe([sys.argv[2]], batch_size=1, verbose=False)
import json
print("RESULT " + json.dumps({"zeros": zeros, "text": hyps[0].text,
                              "pinch_imported": any(m == "pinch" or m.startswith("pinch.") for m in sys.modules)}))
"""


def test_baked_nemo_runs_without_pinch(recipe):
    root, _ = recipe
    model = root / "exp" / f"conformer_ctc_bpe_unigram32_sspg{TARGET}" / "model.nemo"
    wav = json.loads((root / "data" / "test_clean" / "manifest.json").read_text().splitlines()[0])["audio_filepath"]
    proc = subprocess.run([sys.executable, "-c", NO_PINCH, str(model), wav], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads([x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1][len("RESULT "):])
    assert abs(result["zeros"] - TARGET) < 0.02
    assert isinstance(result["text"], str)
    assert result["pinch_imported"] is False


def _pretrained_run(root, pretrained, expdir, *extra, timeout=900):
    env = dict(os.environ, OMP_NUM_THREADS="1", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.run(
        [str(RUN), "--python", sys.executable, "--stage", "2", "--stop_stage", "7", "--size", "tiny",
         "--datadir", str(root / "data"), "--expdir", str(expdir), "--results_table", str(expdir / "results"),
         "--pretrained", str(pretrained), "--corpus", "embedded", "--dense_control", "false",
         "--target_sparsity", str(TARGET),
         "--finetune_args", f"{TINY} trainer.max_epochs=3 model.optim.lr=0.05",
         "--compress_args", "model.pruning.eta=20", *extra],
        env=env, capture_output=True, text=True, timeout=timeout)


def test_a_pretrained_nemo_is_compressed_on_the_recipe_data(recipe, tmp_path):
    """A user's .nemo (here: the tiny dense model, copied out of the recipe) in place of
    stages 2-3: its own tokenizer, compressed, baked, transcribed and scored."""
    root, _ = recipe
    held = tmp_path / "models" / "my_ctc.nemo"
    held.parent.mkdir()
    held.write_bytes((root / "exp" / DENSE / "model.nemo").read_bytes())
    proc = _pretrained_run(root, held, tmp_path / "exp")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Stage 2: skipped: --pretrained" in proc.stderr and "Stage 3: Pretrained model" in proc.stderr
    dense_dir = tmp_path / "exp" / "pretrained_my_ctc"
    assert (dense_dir / "model.nemo").resolve() == held.resolve()
    rows = json.loads((tmp_path / "exp" / "results" / "results.json").read_text())
    assert [r["method"] for r in rows] == ["dense", "sspg"]
    dense, sspg = rows
    assert f"pretrained {held.name}" in dense["notes"] and str(held.parent) not in dense["notes"]
    assert dense["params"] > 0
    assert abs(sspg["sparsity"] - TARGET) < 0.02 and sspg["reference"] == "dense"


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("not a model"), "not a NeMo archive"),
    (lambda p: None, "no such .nemo file"),
])
def test_a_pretrained_path_that_is_no_nemo_model_stops_with_its_name(recipe, tmp_path, make, message):
    root, _ = recipe
    bad = tmp_path / "model.nemo"
    make(bad)
    proc = _pretrained_run(root, bad, tmp_path / "exp", "--stop_stage", "3", timeout=300)
    assert proc.returncode != 0 and message in proc.stderr and str(bad) in proc.stderr, proc.stderr[-2000:]


def test_a_gated_nemo_is_refused_as_pretrained(recipe, tmp_path):
    root, _ = recipe
    gated = root / "exp" / f"conformer_ctc_bpe_unigram32_sspg{TARGET}" / "gated.nemo"
    proc = _pretrained_run(root, gated, tmp_path / "exp", "--stop_stage", "3", timeout=300)
    assert proc.returncode != 0 and "still has its gates; bake it first" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize("options, message", [
    (["--nproc_per_node", "2"], "data-parallel training runs in Slurm jobs (--cmd_backend slurm)"),
    (["--num_nodes", "two"], "--num_nodes must be a positive integer, not 'two'"),
    (["--ngpu", "x"], "--ngpu must be a non-negative integer, not 'x'"),
    (["--cmd_backend", "slurm", "--ngpu", "2", "--nproc_per_node", "4"],
     "data-parallel training runs one process per GPU (--nproc_per_node 2)"),
    (["--cmd_backend", "slurm", "--slurm_conf", "/nonexistent.conf"], "--slurm_conf /nonexistent.conf: no such file"),
])
def test_bad_job_options_stop_before_any_stage(tmp_path, options, message):
    proc = subprocess.run([str(RUN), "--python", sys.executable, "--datadir", str(tmp_path / "data"),
                           "--expdir", str(tmp_path / "exp"), *options], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "exp").exists() and not (tmp_path / "data").exists()
