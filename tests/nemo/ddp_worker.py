"""One rank of the DDP test: compress a tiny model on CPU, dump its thresholds and masks.

Lightning's DDP launcher starts the second rank by running this script again; under srun
(2 tasks) Lightning's SLURMEnvironment takes the ranks from Slurm instead.
    python ddp_worker.py MODEL_CFG.yaml OUT_DIR
"""
import sys

import lightning.pytorch as pl
import torch
from omegaconf import OmegaConf

from pinch.nemo import PinchEncDecCTCModelBPE


def main(cfg_path, out_dir):
    pl.seed_everything(0)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, num_sanity_val_steps=0,
                         limit_val_batches=0)
    model = PinchEncDecCTCModelBPE(cfg=OmegaConf.load(cfg_path), trainer=trainer)
    trainer.fit(model)
    state = {
        "thresholds": {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("_threshold")},
        "masks": dict(model.pruner.method.keep_masks()),
        "steps": int(model.pinch_steps),
        "total_steps": model.pruner.clock.total_steps,
        "sparsity": model.pruner.sparsity().gated,
        "cluster": type(trainer.strategy.cluster_environment).__name__,
    }
    torch.save(state, f"{out_dir}/rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main(*sys.argv[1:3])
