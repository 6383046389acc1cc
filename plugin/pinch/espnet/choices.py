"""The ``pruning`` choice of an espnet2 config and how its section becomes a PruningConfig."""
from espnet2.train.class_choices import ClassChoices

from pinch import PruningConfig
from pinch.methods import METHODS, PruningMethod

# `pruning: none` (or no key) trains without pruning, as for any optional espnet2 choice.
pruning_choices = ClassChoices(
    "pruning", classes=METHODS, type_check=PruningMethod, default=None, optional=True
)

# Keys of the ESPnet config that only pinch understands; bake removes them.
PRUNING_KEYS = ("pruning", "pruning_conf", "pruning_config")


def add_pruning_config_argument(parser):
    """``--pruning_config FILE``: a shared preset, next to the choice's own two options."""
    parser.add_argument(
        "--pruning_config",
        default=None,
        help="A shared pruning preset (conf/pruning/*.yaml); pruning_conf keys override it",
    )


def resolve_pruning(args):
    """Merge ``--pruning_config`` into ``pruning``/``pruning_conf`` and validate them.

    Returns the PruningConfig, or None without pruning. The merged values are written
    back into ``args`` so the saved config.yaml is self-contained; errors name the file
    or the key.
    """
    conf = dict(getattr(args, "pruning_conf", None) or {})
    method = getattr(args, "pruning", None)
    path = getattr(args, "pruning_config", None)
    if path is not None:
        preset = PruningConfig.read_file(path)
        file_method = preset.pop("method", None)
        if method is not None and file_method is not None and method != file_method:
            raise ValueError(
                f"--pruning {method} disagrees with 'method: {file_method}' in {path}"
            )
        method = method or file_method
        conf = {**preset, **conf}
    if "method" in conf:
        raise ValueError("pruning_conf must not hold 'method': set it with 'pruning: <method>'")
    if method is None:
        if conf:
            raise ValueError(f"pruning_conf {sorted(conf)} is given but no 'pruning' method")
        return None
    where = f" (from {path})" if path else ""
    try:
        config = PruningConfig.from_dict({"method": method, **conf})
    except (TypeError, ValueError) as err:
        raise ValueError(f"pruning_conf{where}: {err}") from None
    args.pruning, args.pruning_conf, args.pruning_config = method, conf, None
    return config
