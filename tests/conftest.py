"""Shared fixtures: tiny models the tests build themselves."""
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

# Under ./run.sh test each pytest-xdist worker has a core: two threads each would fight
# over the machine's two (the recipes' subprocesses get OMP_NUM_THREADS=1 too).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

# The recipe modules take most of the suite's time (each runs its recipe once as a fixture):
# they go first, one to each worker, and the rest of the suite fills in behind them. The ESPnet
# ones start from stages 1-11 made once for all (espnet_dense), the NeMo ones from stages 1-3
# (nemo_dense): one worker makes espnet_dense while the other makes nemo_dense.
# Then the other modules that run a recipe (minutes each), longest first, so that neither worker
# is left alone with one at the end.
SLOWEST_FIRST = ("espnet/test_espnet_recipe.py", "nemo/test_recipe.py", "espnet/test_espnet_sweep.py",
                 "espnet/test_espnet_tts_recipe.py", "nemo/test_tts_recipe.py", "espnet/test_espnet_user_data.py",
                 "nemo/test_nemo_held_transducer.py", "nemo/test_nemo_user_data.py")


def _forget_nemo_version():
    """NeMo's exp_manager, run in a test's own process without resume_if_exists, leaves its run's
    version in os.environ (NEMO_EXPM_VERSION, for the ranks it would spawn): every NeMo training a
    later test starts as a subprocess would inherit it and log into a dated version folder
    (seen in full suites: a resumed run's checkpoints under <name>/2026-12-07_04-16-34/)."""
    os.environ.pop("NEMO_EXPM_VERSION", None)


@pytest.fixture(autouse=True, scope="module")
def _no_nemo_version_for_module_fixtures():
    _forget_nemo_version()  # before the module's own fixtures (a recipe run) start


@pytest.fixture(autouse=True)
def _no_nemo_version_after_a_test():
    yield
    _forget_nemo_version()


@pytest.fixture(autouse=True)
def _gradients_left_on():
    """A test (or the code it calls in-process) that switches gradients off for the process fails
    here, not the tests a worker runs after it (seen in CI: a teacher's torch.set_grad_enabled(False)
    broke 13 training tests that followed on the same worker)."""
    yield
    leaked = not torch.is_grad_enabled()
    torch.set_grad_enabled(True)
    assert not leaked, "this test left torch's gradients switched off for the process"


def pytest_collection_modifyitems(items):
    def rank(item):
        path = item.nodeid.split("::")[0]
        return next((i for i, name in enumerate(SLOWEST_FIRST) if path.endswith(name)), len(SLOWEST_FIRST))

    items.sort(key=rank)  # stable: every module keeps its own order


def _helpers_of(folder):
    """The recipe-run helpers of tests/<folder> (recipe_runs, asr_recipe_runs) importable, also in
    a run that collected none of that folder's modules."""
    path = str(Path(__file__).resolve().parent / folder)
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture(scope="session")
def espnet_dense(tmp_path_factory):
    """The tiny ESPnet ASR recipe's stages 1-11 with no compression run (the tiny embedded corpus,
    its dumps, statistics, token list and a dense model), made once per test run for every module
    that starts from them (the NeMo TTS recipe's cross-toolkit judge too); read-only for them (each
    compresses, decodes and scores in a root or experiment of its own)."""
    pytest.importorskip("espnet2", reason="the ESPnet adapter needs espnet (pip install pinch[espnet])")
    _helpers_of("espnet")
    from recipe_runs import run_recipe
    from shared_dirs import made_once

    def make(root):
        (root / "stages_1-11.stderr").write_text(run_recipe(root, "--stop_stage", "11", "--pruning", "none", "--dense_control", "false").stderr)

    return made_once(tmp_path_factory, "espnet_dense", make)


@pytest.fixture(scope="session")
def nemo_dense(tmp_path_factory):
    """The tiny NeMo ASR recipe's stages 1-3 (the embedded corpus, its tokenizer, a dense model of
    2 epochs), made once per test run for the ASR and TTS recipe modules (the ESPnet TTS recipe's
    cross-toolkit judge too); read-only for them."""
    _helpers_of("nemo")
    from asr_recipe_runs import TINY, recipe_cmd, recipe_env
    from shared_dirs import made_once

    def make(root):
        proc = subprocess.run(recipe_cmd(root, "--stop_stage", "3", "--train_args", f"{TINY} trainer.max_epochs=2"),
                              env=recipe_env(), capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-4000:]
        (root / "stages_1-3.stderr").write_text(proc.stderr)

    return made_once(tmp_path_factory, "nemo_dense", make)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real single-node Slurm (munged, slurmctld, slurmd) on localhost, per pytest worker."""
    from slurm_cluster import LocalSlurm

    cluster = LocalSlurm().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def slurm(slurm_cluster, monkeypatch):
    """The session's Slurm, its client commands pointed at it (SLURM_CONF) for the test."""
    for name, value in slurm_cluster.env.items():
        monkeypatch.setenv(name, value)
    return slurm_cluster


# Tiny models gain nothing from compiling the gate (seconds per process); tests that compare
# the compiled gate with the eager one turn it back on.
os.environ.setdefault("PINCH_COMPILE", "0")


class ToyNet(nn.Module):
    """A small regression MLP whose hidden layers sit under ``encoder``."""

    def __init__(self, d_in=16, hidden=64, d_out=4):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )
        self.head = nn.Linear(hidden, d_out)

    def forward(self, x):
        return self.head(torch.relu(self.encoder(x)))


def make_toy_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 16, generator=g)
    return x, torch.tanh(x @ torch.randn(16, 4, generator=g))


@pytest.fixture
def toy_data():
    return make_toy_data()


def train(model, data, steps, lr, pruner=None):
    """AdamW on MSE; returns the list of task losses."""
    x, y = data
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = ((model(x) - y) ** 2).mean()
        losses.append(loss.item())
        optimizer_step(loss, opt, pruner)
    return losses


def optimizer_step(loss, opt, pruner=None):
    """One update as a toolkit's loop makes it: penalty added, then the pruner's step."""
    if pruner is not None:
        loss = loss + pruner.penalty()
    opt.zero_grad()
    loss.backward()
    opt.step()
    if pruner is not None:
        pruner.step()


@contextlib.contextmanager
def single_thread():
    """Toy models are tiny: a second thread only adds synchronisation (and suffers most
    when the machine is loaded)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def _converged_state():
    data = make_toy_data()
    torch.manual_seed(0)
    model = ToyNet()
    with single_thread():
        losses = train(model, data, 1500, 3e-3)
    assert losses[-1] < 1e-3, "the dense toy model should fit its data before compression"
    return model.state_dict()


@pytest.fixture
def converged_toy(_converged_state):
    """A fresh copy of a toy model trained to convergence on ``toy_data`` (the paper's setting)."""
    model = ToyNet()
    model.load_state_dict(_converged_state)
    return model
