"""Tiny espnet2 ASR models built through pinch's task, as the recipe builds them."""
import torch


TOKENS = ["<blank>", "<unk>", "a", "b", "c", "d", "e", " ", "<sos/eos>"]


def tiny_cmd(*extra):
    """Command-line options of a ~20k-parameter Conformer CTC model on 16 kHz audio."""
    return [
        "--token_list", *[],  # filled by parse_tiny
        "--input_size", "20",
        "--normalize", "none",
        "--encoder", "conformer",
        "--encoder_conf", "output_size=16",
        "--encoder_conf", "linear_units=32",
        "--encoder_conf", "attention_heads=2",
        "--encoder_conf", "num_blocks=2",
        "--encoder_conf", "input_layer=linear",
        "--encoder_conf", "cnn_module_kernel=3",
        "--encoder_conf", "macaron_style=true",
        "--encoder_conf", "rel_pos_type=latest",
        "--encoder_conf", "pos_enc_layer_type=rel_pos",
        "--encoder_conf", "selfattention_layer_type=rel_selfattn",
        "--model_conf", "ctc_weight=1.0",
        *extra,
    ]


def parse_tiny(tmp_path, *extra):
    from pinch.espnet.tasks.asr import ASRTask

    token_list = tmp_path / "tokens.txt"
    token_list.write_text("\n".join(TOKENS) + "\n")
    cmd = tiny_cmd(*extra)
    cmd[1:1] = [str(token_list)]
    return ASRTask.get_parser().parse_args(cmd)


def batch(n=4, frames=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.full((n,), frames)
    text = torch.randint(2, 7, (n, 5), generator=g)
    return {
        "speech": torch.randn(n, frames, 20, generator=g),
        "speech_lengths": lengths,
        "text": text,
        "text_lengths": torch.full((n,), 5),
    }


def train_steps(model, optimizer, batches):
    """Plain training updates (pinch's optimizer post-hook steps the pruning schedule)."""
    model.train()
    for b in batches:
        loss, stats, _ = model(**b)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return stats


def save_and_bake(task, args, model, tmp_path):
    """The gated model as a training run leaves it (exp/), baked with pinch's bake (baked/)."""
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    from pinch.espnet.bin.bake import bake_model_dir

    exp = tmp_path / "exp"
    exp.mkdir()
    torch.save(model.state_dict(), exp / "model.pth")
    with open(exp / "config.yaml", "w") as f:
        yaml_no_alias_safe_dump(vars(args), f)
    bake_model_dir(task, exp / "config.yaml", exp / "model.pth", tmp_path / "baked")
    return exp, tmp_path / "baked"


def tiny_char_aligner(out_dir, token_list):
    """A randomly initialised ~15k-parameter character Conformer CTC model on 16 kHz waveforms,
    as an ESPnet ASR model dir (config.yaml, model.pth): a duration aligner's shape, not its skill."""
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    from pinch.espnet.tasks.asr import ASRTask

    args = ASRTask.get_parser().parse_args([
        "--token_list", str(token_list), "--token_type", "char", "--frontend", "default",
        "--frontend_conf", "n_fft=512", "--frontend_conf", "hop_length=160", "--frontend_conf", "n_mels=20",
        "--normalize", "none", "--encoder", "conformer", "--encoder_conf", "output_size=16",
        "--encoder_conf", "linear_units=32", "--encoder_conf", "attention_heads=2", "--encoder_conf", "num_blocks=1",
        "--encoder_conf", "input_layer=conv2d", "--model_conf", "ctc_weight=1.0"])
    torch.manual_seed(0)
    model = ASRTask.build_model(args)
    out_dir.mkdir(parents=True)
    torch.save(model.state_dict(), out_dir / "model.pth")
    with open(out_dir / "config.yaml", "w") as f:
        yaml_no_alias_safe_dump(vars(args), f)
    return out_dir


def distributed_worker(rank, world, port, out_dir):
    """One DDP rank (torch.multiprocessing): the process group from the given rank and port."""
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    train_rank(rank, world, out_dir)


def slurm_worker(out_dir):
    """One DDP rank started by srun: espnet2's own Slurm launcher option reads the rank, the
    world size and the master node from Slurm's variables (MASTER_PORT from the caller)."""
    from espnet2.train.distributed_utils import DistributedOption

    option = DistributedOption(distributed=True, dist_backend="gloo", dist_init_method="env://",
                               dist_launcher="slurm")
    option.init_options()
    option.init_torch_distributed()
    train_rank(option.dist_rank, option.dist_world_size, out_dir)


def train_rank(rank, world, out_dir):
    """Tiny gated model, 6 updates on rank-specific data, state saved (process group set up)."""
    import tempfile
    from pathlib import Path

    import torch.distributed as dist
    from espnet2.train.distributed_utils import DistributedOption
    from espnet2.train.reporter import Reporter
    from espnet2.train.trainer import Trainer

    from pinch.espnet.tasks.asr import ASRTask

    torch.set_num_threads(1)
    try:
        args = parse_tiny(Path(tempfile.mkdtemp()), "--pruning", "sspg", "--pruning_conf", "target_sparsity=0.5",
                          "--pruning_conf", "preset=conformer", "--pruning_conf", "eta=200.0",
                          "--optim", "adam", "--optim_conf", "lr=0.01")
        torch.manual_seed(0)  # the same initial model on every rank, as after DDP's broadcast
        model = ASRTask.build_model(args)
        optimizers = ASRTask.build_optimizers(args, model)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        seeds = [100 * rank + i for i in range(6)]
        iterator = [([f"r{rank}_{s}_{j}" for j in range(4)], batch(seed=s)) for s in seeds]
        reporter = Reporter()
        reporter.set_epoch(1)
        with reporter.observe("train") as sub:
            Trainer.train_one_epoch(
                model=ddp, iterator=iterator, optimizers=optimizers, schedulers=[None], scaler=None,
                reporter=sub, summary_writer=None, options=Trainer.build_options(args),
                distributed_option=DistributedOption(distributed=True, dist_rank=rank, dist_world_size=world),
            )
        torch.save({
            "steps": int(model.pinch_steps),
            "sparsity": model._pinch_pruner.sparsity().gated,
            "thresholds": {n: p.detach().clone() for n, p in model.named_parameters()
                           if n.endswith("_threshold")},
            "data_seen": seeds,
        }, Path(out_dir) / f"rank{rank}.pt")
        dist.barrier()  # both ranks done with collectives before teardown (pytorch#75097)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":  # under srun: python espnet_tiny.py OUT_DIR
    import sys

    slurm_worker(sys.argv[1])
