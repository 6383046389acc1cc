"""The ESPnet adapter's tests need espnet; without it they are skipped as a group. The recipe
modules share one run of the recipe's stages 1-11 (espnet_dense)."""
import pytest

pytest.importorskip("espnet2", reason="the ESPnet adapter needs espnet (pip install pinch[espnet])")


@pytest.fixture(scope="session")
def espnet_dense(tmp_path_factory):
    """The tiny ESPnet ASR recipe's stages 1-11 with no compression run (the tiny embedded corpus,
    its dumps, statistics, token list and a dense model), made once per test run for every module that starts from them;
    read-only for them (each compresses, decodes and scores in a root or experiment of its own)."""
    from recipe_runs import run_recipe
    from shared_dirs import made_once

    def make(root):
        (root / "stages_1-11.stderr").write_text(run_recipe(root, "--stop_stage", "11", "--pruning", "none", "--dense_control", "false").stderr)

    return made_once(tmp_path_factory, "espnet_dense", make)
