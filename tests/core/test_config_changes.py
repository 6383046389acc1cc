"""The record of what a pass changed in a held model's config (both toolkits write it)."""
import subprocess
import sys

import yaml

from pinch.config_changes import ABSENT, changed_keys


def test_changed_keys_are_the_leaves_that_differ_with_absent_sides():
    old = {"optim": {"lr": 0.002, "betas": [0.9, 0.98]}, "sched": {"max_steps": 1000}, "keep": 1}
    new = {"optim": {"lr": 0.001, "betas": [0.9, 0.98]}, "sched": {}, "keep": 1, "pruning": {"method": "sspg"}}
    assert changed_keys(old, new) == {
        "model.optim.lr": (0.002, 0.001),
        "model.sched.max_steps": (1000, ABSENT),
        "model.sched": (ABSENT, {}),
        "model.pruning.method": (ABSENT, "sspg"),
    }


def test_the_entry_point_writes_only_the_keys_asked_for(tmp_path):
    (tmp_path / "held.yaml").write_text("optim_conf: {lr: 0.002}\nmax_epoch: 70\nencoder_conf: {output_size: 256}\n")
    (tmp_path / "run.yaml").write_text("optim_conf: {lr: 0.001}\nmax_epoch: 2\nencoder_conf: {output_size: 128}\n"
                                       "init_param: [dense.pth]\n")
    out = tmp_path / "overrides.yaml"
    proc = subprocess.run([sys.executable, "-m", "pinch.config_changes", "--old", str(tmp_path / "held.yaml"),
                           "--new", str(tmp_path / "run.yaml"), "--out", str(out), "--under", "optim_conf", "max_epoch"],
                          capture_output=True, text=True, check=True)
    assert yaml.safe_load(out.read_text()) == {"optim_conf.lr": {"old": 0.002, "new": 0.001},
                                               "max_epoch": {"old": 70, "new": 2}}
    assert "pinch: max_epoch: 70 -> 2" in proc.stderr


def test_an_unreadable_config_is_one_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("a: [unclosed\n")
    proc = subprocess.run([sys.executable, "-m", "pinch.config_changes", "--old", str(tmp_path / "bad.yaml"),
                           "--new", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "o.yaml")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.endswith("bad.yaml: cannot read as YAML (ParserError)\n")
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr and not (tmp_path / "o.yaml").exists()
