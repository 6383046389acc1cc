"""Take a user's pretrained ESPnet ASR model as the recipe's dense model (``run.sh --pretrained``).

The model comes as espnet_model_zoo packs it: a zip, or the directory it unpacks to, with
``meta.yaml`` naming ``asr_train_config`` and ``asr_model_file``; or a plain model dir
holding ``config.yaml`` and one ``*.pth``. Its ``config.yaml`` names the token list, the BPE
model and the normalisation statistics by paths relative to the pack's root. They are
copied next to the model with the paths rewritten, so the recipe tokenizes its data and
builds the network exactly as the model was trained. The checkpoint is read as data and
loaded strictly into the network espnet2's ASR task builds from that config: a token list
that does not fit the model, or a config of another task, stops here, naming it.

    python -m pinch.espnet.bin.pretrained --pretrained /models/asr_librispeech.zip \
        --out_dir exp/pretrained_asr_librispeech --model_name valid.loss.ave.pth
"""
import argparse
import copy
import shutil
import sys
import zipfile
from pathlib import Path

import yaml
from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

from pinch.data.atomic import atomic_output_dir
from pinch.export.checkpoint import load_state_dict

# Files a config names that the model needs at training and decoding, copied under these names.
COPIED = {("token_list",): "tokens.txt", ("bpemodel",): "bpe.model", ("normalize_conf", "stats_file"): "feats_stats.npz"}


def unpack(path, into):
    """A zip's members under ``into`` (none may leave it); a directory is used where it is."""
    path = Path(path)
    if path.is_dir():
        return path
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: neither a model directory nor a zip of one")
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            target = (into / name).resolve()
            if not target.is_relative_to(into.resolve()):
                raise ValueError(f"{path}: member {name!r} would be written outside the model directory")
        z.extractall(into)
    return into


def locate(root):
    """(config.yaml, model .pth) of an unpacked model: meta.yaml's, or the dir's only ones."""
    meta = root / "meta.yaml"
    if meta.is_file():
        info = yaml.safe_load(meta.read_text(encoding="utf-8")) or {}
        config = (info.get("yaml_files") or {}).get("asr_train_config")
        model = (info.get("files") or {}).get("asr_model_file")
        if not config or not model:
            raise ValueError(f"{meta}: no yaml_files.asr_train_config / files.asr_model_file: not an ASR model pack")
        return root / config, root / model
    configs, models = sorted(root.rglob("config.yaml")), sorted(root.rglob("*.pth"))
    if len(configs) != 1 or len(models) != 1:
        raise ValueError(f"{root}: expected meta.yaml, or one config.yaml and one .pth; found "
                         f"{len(configs)} config.yaml and {len(models)} .pth")
    return configs[0], models[0]


def resolve(value, root, config_dir):
    """A path from a packed config: as written, else relative to the pack's root or the config."""
    for candidate in (Path(value), root / value, config_dir / value):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"the model's config names {value}, which is not in {root}")


def place(pretrained, out_dir, model_name):
    """Write ``out_dir``: config.yaml, tokens.txt, bpe.model (feats_stats.npz) and the checkpoint."""
    from espnet2.tasks.asr import ASRTask

    out_dir = Path(out_dir)
    with atomic_output_dir(out_dir) as tmp:
        root = unpack(pretrained, tmp / "pack")
        config_file, model_file = locate(root)
        for f in (config_file, model_file):
            if not f.is_file():
                raise FileNotFoundError(f"{f}: named by the model pack but missing")
        config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        if not isinstance(config, dict) or "encoder" not in config or "token_list" not in config:
            raise ValueError(f"{config_file}: not an espnet2 ASR training config (no encoder / token_list)")
        if config.get("token_type") != "bpe" or not config.get("bpemodel"):
            raise ValueError(f"{config_file}: token_type {config.get('token_type')!r}; pinch's recipe tokenizes "
                             "with the model's BPE model (token_type bpe and a bpemodel)")
        build = copy.deepcopy(config)  # paths into tmp, to build the network now
        for keys, name in COPIED.items():
            holders = [config, build]
            for key in keys[:-1]:
                holders = [h.get(key) if isinstance(h.get(key), dict) else {} for h in holders]
            value = holders[0].get(keys[-1])
            if isinstance(value, str):
                shutil.copy(resolve(value, root, config_file.parent), tmp / name)
                holders[0][keys[-1]], holders[1][keys[-1]] = str(out_dir.resolve() / name), str(tmp / name)
        if isinstance(config["token_list"], list):  # espnet2 writes the list itself into config.yaml
            (tmp / "tokens.txt").write_text("".join(f"{t}\n" for t in config["token_list"]), encoding="utf-8")
            config["token_list"], build["token_list"] = str(out_dir.resolve() / "tokens.txt"), str(tmp / "tokens.txt")
        if not (tmp / "tokens.txt").is_file():
            raise ValueError(f"{config_file}: its token_list is neither a list nor a file")
        model = ASRTask.build_model(argparse.Namespace(**build))
        try:
            model.load_state_dict(load_state_dict(str(model_file)), strict=True)
        except RuntimeError as err:
            size = sum(1 for t in (tmp / "tokens.txt").read_text(encoding="utf-8").splitlines() if t)
            raise ValueError(f"{model_file} does not fit the network its config builds with its token list "
                             f"({size} tokens): {' '.join(str(err).splitlines()[:3])}") from None
        # A trained model's config.yaml also records run-time values (``distributed``, ...)
        # that espnet2's parser refuses as --config, and its data options, which the
        # recipe's command line would append to: the model's options are what is kept.
        actions = ASRTask.get_parser()._actions
        keep = {a.dest for a in actions if not isinstance(a, argparse._AppendAction)} - {"config", "output_dir"}
        config = {k: v for k, v in config.items() if k in keep}
        with (tmp / "config.yaml").open("w", encoding="utf-8") as f:
            yaml_no_alias_safe_dump(config, f, indent=4, sort_keys=False)
        (tmp / "source").write_text(f"{Path(pretrained).resolve()}\n{model_file.relative_to(root)}\n")
        shutil.copy(model_file, tmp / model_name)
        if (tmp / "pack").resolve() == root.resolve():
            shutil.rmtree(root)
    return out_dir, config


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.espnet.bin.pretrained", description=__doc__.split("\n")[0])
    parser.add_argument("--pretrained", required=True, help="model zip or directory (espnet_model_zoo layout)")
    parser.add_argument("--out_dir", required=True, help="the recipe's dense model directory")
    parser.add_argument("--model_name", default="valid.loss.ave.pth", help="file name the recipe decodes")
    args = parser.parse_args(argv)
    try:
        out_dir, config = place(args.pretrained, args.out_dir, args.model_name)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"pinch.espnet.bin.pretrained: error: {err}", file=sys.stderr)
        return 1
    print(f"pinch.espnet: {args.pretrained} -> {out_dir} (encoder {config['encoder']}, "
          f"token_type {config['token_type']}, normalize {config.get('normalize')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
