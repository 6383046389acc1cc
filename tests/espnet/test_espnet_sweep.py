"""The ESPnet recipe's evidence sweep and its pretrained-model entry, from the dense model that
the recipe modules share (stages 1-11, ``espnet_dense``): a sweep killed and resumed on this
machine, the same sweep through a real Slurm (job arrays, split decoding, a failed job rerun alone
as a data-parallel training), a sweep elsewhere that redoes nothing, and a model zoo zip
compressed on the recipe's data."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from recipe_runs import DENSE, DENSE_TAG, FINETUNE, LATEST_TAG, RECIPE, experiment_beside, kill_recipe_when, root_beside, run_recipe


@pytest.fixture(scope="module")
def local_sweep(espnet_dense, tmp_path_factory):
    """Two methods x two targets from the shared dense model, into a table of their own,
    killed after the first run and rerun (two runs at a time) on this machine."""
    tmp = tmp_path_factory.mktemp("sweep")
    root, table, exp = root_beside(espnet_dense, tmp), tmp / "table", experiment_beside(espnet_dense, tmp)
    options = ("--stage", "11", "--stop_stage", "13", "--dense_control", "false", "--pruning", "sspg ump",
               "--sweep", "0.5 0.8", "--inference_nj", "1",
               "--finetune_args", FINETUNE.replace("--max_epoch 4", "--max_epoch 1"))
    sweep = ("--expdir", str(exp), "--results_table", str(table), *options)
    runs = [exp / f"{DENSE}_{m}{t}" for m in ("sspg", "ump") for t in ("0.5", "0.8")]
    # Killed once the first run has finished (its time written), as the second starts.
    kill_recipe_when(root, sweep, lambda: (runs[0] / "wall_time_s").exists()
                     and not (runs[0] / ".attempt_start").exists(), "the sweep")
    done = run_recipe(root, *sweep, "--train_nj", "2")
    return {"root": root, "options": options, "sweep": sweep, "runs": runs, "table": table, "stderr": done.stderr,
            "rows": json.loads((table / "results.json").read_text())}


def test_a_killed_sweep_resumes_without_redoing_a_finished_run(local_sweep):
    runs, rows = local_sweep["runs"], local_sweep["rows"]
    assert f"{runs[0]}/valid.loss.ave.pth exists; skipping" in local_sweep["stderr"]
    assert "Stage 11: 3 training jobs" in local_sweep["stderr"]
    # Progress, with an estimate of the time left.
    assert re.search(r"training \d finished \(1 of 3 done, elapsed \d+s, about \d+s left\)", local_sweep["stderr"])
    assert len((runs[0] / "wall_time_s").read_text().split()) == 1  # trained once
    assert sorted((r["method"], r.get("target_sparsity")) for r in rows) == [
        ("dense", None), ("sspg", 0.5), ("sspg", 0.8), ("ump", 0.5), ("ump", 0.8)]
    assert len({r["dense_fingerprint"] for r in rows}) == 1
    for r in rows[1:]:
        assert r["steps"] > 0 and r["peak_rss_mb"] > 100 and r["wall_time_s"] > 0
        assert set(r["mapsswe"]) == {"dense"} and r["granularity"] == "unstructured"
        assert 0 < r["model_sparsity"] < r["sparsity"]


# How a run went rather than what it reached: the local sweep was killed once (the runs it cut
# short have two attempts), the Slurm one was not.
TIMING = ("system", "date", "notes", "wall_time_s", "attempts", "peak_rss_mb", "reach_s")


def without_timing(rows):
    return sorted(({k: v for k, v in r.items() if k not in TIMING} for r in rows), key=json.dumps)


def test_the_sweep_on_slurm_gives_the_local_table_and_a_rerun_resubmits_only_the_failed_job(
        espnet_dense, local_sweep, tmp_path, slurm):
    """The local sweep's runs at 0.8 through the Slurm backend (the test's own cluster, the shipped
    conf/slurm.conf with one CPU per job as the local runs had): training jobs and split decoding
    are Slurm job arrays; a job that fails is named with its log; the rerun resubmits it alone,
    as a data-parallel training of two processes (srun tasks). The dense model's decodes are the
    local sweep's (copied): its rows must come out the same."""
    local_exp = local_sweep["runs"][0].parent
    root, table = local_sweep["root"], tmp_path / "table"
    exp = experiment_beside(espnet_dense, tmp_path, decodes_of=local_exp)
    conf = tmp_path / "slurm.conf"
    conf.write_text((RECIPE.parents[2] / "conf" / "slurm.conf").read_text().replace(
        "default num_threads=2", "default num_threads=1"))
    blocked = exp / local_sweep["runs"][3].name  # ump at 0.8
    blocked.write_text("")  # a file where the last run's dir goes: its job fails
    options = list(local_sweep["options"])
    options[options.index("--sweep") + 1] = "0.8"
    options[options.index("--inference_nj") + 1] = "2"
    sweep = ("--expdir", str(exp), "--results_table", str(table), *options, "--train_nj", "2",
             "--cmd_backend", "slurm", "--slurm_conf", str(conf))
    failed = run_recipe(root, *sweep, check=False)
    assert failed.returncode != 0
    assert "2 jobs submitted as Slurm job" in failed.stderr
    assert "1 of 2 stage11_training jobs failed:\n  JOB=2 (exit code 1; log: " in failed.stderr
    assert f"{exp}/logs/stage11_training.2.log: mkdir: cannot create directory" in failed.stderr
    blocked.unlink()
    again = run_recipe(root, *sweep, "--nproc_per_node", "2")
    assert "Stage 11: 1 training jobs" in again.stderr and "1 jobs submitted as Slurm job" in again.stderr
    assert f"{exp / DENSE}/{DENSE_TAG}/test_clean/text exists; skipping" in again.stderr
    split = local_sweep["runs"][1].name, "baked", LATEST_TAG, "logdir"  # both test sets, in two jobs
    for job in (1, 2):
        assert "# Ended (code 0)" in exp.joinpath(*split, f"asr_inference.{job}.log").read_text()
    # espnet2 trained it as rank 0 of 2 (its log's prefix), the other rank beside it.
    assert re.search(r"^\[\S+:0/2\] ", (blocked / "train.log").read_text(), re.M)
    assert len((blocked / "peak_rss_kb").read_text().split()) == 2
    # Its batches were split over the two ranks: the same updates and sparsity, not the same
    # floating-point sums; every other row is the local one.
    def split_rows(rows):
        rows = [r for r in without_timing(rows) if r.get("target_sparsity") in (None, 0.8)]
        ddp = [r for r in rows if (r["method"], r.get("target_sparsity")) == ("ump", 0.8)]
        return [r for r in rows if r not in ddp], ddp

    (others, ddp) = split_rows(json.loads((table / "results.json").read_text()))
    local, reference = split_rows(local_sweep["rows"])
    assert [r["method"] for r in others] and others == local and len(ddp) == len(reference) == 1
    for key in ("steps", "sparsity", "model_sparsity", "nonzero_params"):
        assert ddp[0][key] == reference[0][key], key


def test_a_sweep_elsewhere_redoes_no_finished_run_and_reports(local_sweep):
    """Another machine: the run dirs gone, the dense model and the table the same."""
    runs, table = local_sweep["runs"], local_sweep["table"]
    shutil.rmtree(runs[3])
    again = run_recipe(local_sweep["root"], *local_sweep["sweep"])
    assert f"{runs[3]}: in {table} for this dense model; skipping" in again.stderr
    assert not runs[3].exists()
    assert json.loads((table / "results.json").read_text()) == local_sweep["rows"]
    report = subprocess.run([sys.executable, "-m", "pinch.sweep", "--table", str(table)],
                            capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    text = (table / "REPORT.md").read_text()
    assert "| espnet | sspg |" in text and "| espnet | ump |" in text
    assert (table / "figures" / "wer_vs_sparsity.png").stat().st_size > 5000


def pack_model_zoo_zip(dense, zip_path, tokens=None):
    """The tiny dense model as espnet_model_zoo packs one: meta.yaml, exp/, data/ with
    paths relative to the pack; the token list in its file. ``tokens`` replaces it."""
    import zipfile

    config = yaml.safe_load((dense / "config.yaml").read_text())
    token_list, bpemodel = config["token_list"], Path(config["bpemodel"])
    config["token_list"] = "data/token_list/bpe_unigram30/tokens.txt"
    config["bpemodel"] = "data/token_list/bpe_unigram30/bpe.model"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("meta.yaml", yaml.safe_dump({
            "espnet": "202511", "yaml_files": {"asr_train_config": "exp/asr_tiny/config.yaml"},
            "files": {"asr_model_file": "exp/asr_tiny/valid.loss.ave.pth"}}))
        z.writestr("exp/asr_tiny/config.yaml", yaml.safe_dump(config))
        z.write(dense / "valid.loss.ave.pth", "exp/asr_tiny/valid.loss.ave.pth")
        z.writestr(config["token_list"], "".join(f"{t}\n" for t in (tokens or token_list)))
        z.write(bpemodel, config["bpemodel"])
    return zip_path


@pytest.mark.parametrize("make, message", [
    (lambda dense, p: pack_model_zoo_zip(dense, p, tokens=["<blank>", "<unk>", "a", "<sos/eos>"]),
     "does not fit the network its config builds with its token list (4 tokens)"),
    (lambda dense, p: p.write_bytes(b"\x00not a zip"), "neither a model directory nor a zip of one"),
])
def test_a_pretrained_model_that_does_not_fit_stops_with_its_name(espnet_dense, tmp_path, make, message):
    pack = tmp_path / "asr_bad.zip"
    make(espnet_dense / "exp" / DENSE, pack)
    root = root_beside(espnet_dense, tmp_path, "pre")
    proc = run_recipe(root, "--pretrained", str(pack), "--corpus", "embedded", "--stage", "5", "--stop_stage", "5",
                      check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-3000:]
    assert not (root / "exp" / "pretrained_asr_bad").exists()
