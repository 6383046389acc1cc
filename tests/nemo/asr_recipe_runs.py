"""The tiny NeMo ASR recipe as the recipe tests run it: its command line and environment."""
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "recipes" / "nemo" / "asr" / "run.sh"
DENSE = "conformer_ctc_bpe_unigram32"
TINY = ("model.encoder.n_layers=1 model.encoder.d_model=32 model.encoder.n_heads=2 "
        "model.encoder.subsampling_conv_channels=8 model.encoder.conv_kernel_size=7 "
        "model.train_ds.batch_size=8 model.validation_ds.batch_size=8 "
        "trainer.log_every_n_steps=1 exp_manager.create_tensorboard_logger=false")


def recipe_env():
    return dict(os.environ, OMP_NUM_THREADS="1", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")


def recipe_cmd(root, *options):
    return [str(RUN), "--python", sys.executable, "--size", "tiny", "--vocab_size", "32",
            "--datadir", str(root / "data"), "--expdir", str(root / "exp"), *options]
