"""What every pinch task adds to its espnet2 base task.

Mixed in before the espnet2 task (``class ASRTask(PruningTask, espnet2ASRTask)``,
with ``pruning_choices`` appended to ``class_choices_list``): the parser gains the
pruning choice, the model is gated right after espnet2 builds it
(before the optimizer, which must own the thresholds), the thresholds get their own
parameter group without weight decay, the optimizer steps the pruning schedule, and
the trainer resumes only from a checkpoint that was written whole.
"""
from pathlib import Path

from espnet2.samplers.build_batch_sampler import build_batch_sampler

from pinch.espnet.attach import attach_pruner, step_with_optimizer
from pinch import PruningConfig
from pinch.espnet.choices import add_pruning_config_argument, resolve_pruning
from pinch.espnet.trainer import with_checked_resume
from pinch.optim import thresholds_without_weight_decay


class PruningTask:
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.trainer = with_checked_resume(cls.trainer)

    @classmethod
    def add_task_arguments(cls, parser):
        # --pruning/--pruning_conf come from pruning_choices in class_choices_list.
        super().add_task_arguments(parser)
        add_pruning_config_argument(parser)

    @classmethod
    def main(cls, args=None, cmd=None):
        """Validate the pruning section before espnet2 spends time on data or models."""
        if args is None:
            args = cls.get_parser().parse_args(cmd)
        if not args.print_config:  # a template is printed, not checked
            try:
                resolve_pruning(args)
            except ValueError as err:
                raise SystemExit(f"{cls.__name__}: {err}") from None
        return super().main(args=args)

    @classmethod
    def get_default_config(cls):
        """``--print_config --pruning METHOD``: ``pruning_conf`` lists every key the method takes."""
        config = super().get_default_config()
        if config.get("pruning") is not None:
            template = PruningConfig.template(config["pruning"])
            template.pop("method")
            config["pruning_conf"] = {**template, **(config.get("pruning_conf") or {})}
        return config

    @classmethod
    def build_model(cls, args):
        model = super().build_model(args)
        config = resolve_pruning(args)
        if config is not None:
            try:
                attach_pruner(model, config, total_steps=planned_updates(args))
            except ValueError as err:  # a preset or pattern that matches nothing: one line
                raise SystemExit(f"{cls.__name__}: pruning: {err}") from None
        return model

    @classmethod
    def build_optimizers(cls, args, model):
        optimizers = super().build_optimizers(args, model)
        pruner = getattr(model, "_pinch_pruner", None)
        if pruner is not None:
            for optimizer in optimizers:
                optimizer.param_groups[:] = thresholds_without_weight_decay(optimizer.param_groups, model)
                step_with_optimizer(pruner, optimizer)
        return optimizers


def planned_updates(args):
    """Optimizer updates the training run will make: the horizon of the tau schedule.

    espnet2 counts batches only once the iterator exists, after the model is built;
    methods need the horizon at construction (l1's prune step, gmp's schedule), so the
    batch count is taken from the same sampler espnet2 will build. Outside training
    (collect_stats, inference from config.yaml) there is no horizon and 1 is used.
    """
    shape_files = list(getattr(args, "train_shape_file", None) or [])
    if getattr(args, "collect_stats", False) or not shape_files or not all(
        Path(f).is_file() for f in shape_files
    ):
        return 1
    batches = args.num_iters_per_epoch
    if batches is None:
        batches = len(
            build_batch_sampler(
                type=args.batch_type,
                shape_files=shape_files,
                fold_lengths=args.fold_length,
                batch_size=args.batch_size,
                batch_bins=args.batch_bins,
                sort_in_batch=args.sort_in_batch,
                sort_batch=args.sort_batch,
                drop_last=args.drop_last_iter,
                min_batch_size=args.min_batch_size,
            )
        )
    return max(args.max_epoch * (batches // args.accum_grad), 1)
