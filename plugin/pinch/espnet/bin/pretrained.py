"""Take a user's pretrained ESPnet model (ASR or TTS) as a recipe's dense model (``run.sh --pretrained``).

The model comes as espnet_model_zoo packs it: a zip, or the directory it unpacks to, with
``meta.yaml`` naming its training config and model file (``asr_train_config`` and
``asr_model_file``; ``train_config`` and ``model_file`` for TTS, as ``espnet2.bin.pack tts``
writes them); or a plain model dir holding ``config.yaml`` and one ``*.pth``. Its
``config.yaml`` names the token list, the BPE model and the normalisation statistics (of the
features, and of a FastSpeech2's pitch and energy) by paths relative to the pack's root. They
are taken from inside the pack only (never the working directory, nor through ``../``, an
absolute path or a symlink out of it), checked to be what the config takes them for, and
copied next to the model with the paths rewritten, so the recipe tokenizes its data and builds
the network exactly as the model was trained; a pack that fails is refused before any network
is built. The checkpoint is read as data and loaded strictly into the network espnet2's task
builds from that config: a token list that does not fit the model, or a config of another
task, stops here, naming it.

    python -m pinch.espnet.bin.pretrained --pretrained /models/asr_librispeech.zip \
        --out_dir exp/pretrained_asr_librispeech --model_name valid.loss.ave.pth
    python -m pinch.espnet.bin.pretrained --task tts --pretrained /models/tts_ljspeech.zip \
        --out_dir exp/tts_pretrained_tts_ljspeech --model_name train.loss.ave.pth
"""
import argparse
import copy
import shutil
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import yaml
from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

from pinch.data.atomic import atomic_output_dir
from pinch.export.checkpoint import load_state_dict

MVN_KEYS = ("count", "sum", "sum_square")  # what espnet2's GlobalMVN reads from its stats_file


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


class Pack:
    """An unpacked model pack, whose files are taken from inside it only.

    Why: a pack is someone else's file. espnet2's packer writes the paths in meta.yaml and in
    the config relative to the dir it packed from, the pack's root; taken as written, ``../``,
    an absolute path or a symlink would read any file of this machine into the model, and a
    path tried against the working directory would quietly take the recipe's own token list
    or BPE model in place of the pack's.
    """

    def __init__(self, given, root):
        self.given, self.root = Path(given), Path(root).resolve()

    def name(self, path):
        """A file of the pack as the user knows it: under the zip or dir they gave, not under
        the temporary dir a zip is unpacked to."""
        return self.given / path.relative_to(self.root)

    def file(self, value, named, bases=()):
        """The regular file that ``value`` (after ``named``, its naming file and key) names,
        relative to the pack's root or one of ``bases``. An absolute path counts only inside
        the pack, as espnet_model_zoo's unpacked dirs write their configs."""
        if not isinstance(value, str) or not value:
            raise ValueError(f"{named} {value!r}: not a path")
        outside = False
        for base in (self.root, *bases):
            try:
                target = (base / value).resolve()
            except (OSError, RuntimeError, ValueError) as err:  # a symlink loop, a NUL byte
                raise ValueError(f"{named} {value}: {err}") from None
            if not target.is_relative_to(self.root):
                outside = True
            elif target.exists():
                if not target.is_file():
                    raise ValueError(f"{self.name(target)} ({named}): not a regular file")
                return target
        if outside:
            raise ValueError(f"{named} {value} leads outside the model pack; its files are read from inside it only")
        raise ValueError(f"{named} {value}: not in the model pack")

    def mapping(self, path):
        """The YAML mapping in ``path``."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ValueError(f"{self.name(path)}: not YAML: {' '.join(str(err).split())}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{self.name(path)}: not a YAML mapping")
        return data


def check_token_list(path, name):
    """A non-empty UTF-8 text file: one token a line, the network's output size."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name}: the token list is not UTF-8 text") from None
    if not text.strip():
        raise ValueError(f"{name}: the token list is empty")


def check_bpe_model(path, name):
    """A model sentencepiece loads: the recipe tokenizes its data with it."""
    import sentencepiece

    try:
        sentencepiece.SentencePieceProcessor(model_file=str(path))
    except (RuntimeError, OSError):  # its message names the temporary copy: left out
        raise ValueError(f"{name}: not a sentencepiece model (sentencepiece cannot load it)") from None


def check_mvn_stats(path, name):
    """An .npz of numeric ``MVN_KEYS`` that loads without unpickling, as GlobalMVN reads it."""
    try:
        if not zipfile.is_zipfile(path):  # else np.load takes it for an .npy or a pickle
            raise ValueError("not an .npz archive")
        with np.load(path, allow_pickle=False) as stats:
            missing = [k for k in MVN_KEYS if k not in stats.files]
            if missing:
                raise ValueError(f"no {', '.join(missing)}")
            for key in MVN_KEYS:
                if stats[key].dtype.kind not in "iuf":
                    raise ValueError(f"{key} is not numeric")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{name}: not GlobalMVN statistics (an .npz of {', '.join(MVN_KEYS)}): {err}") from None


# Files a config names that the model needs at training and decoding: copied under these
# names, once the check shows each is what the config takes it for.
COPIED = {("token_list",): ("tokens.txt", check_token_list), ("bpemodel",): ("bpe.model", check_bpe_model),
          ("normalize_conf", "stats_file"): ("feats_stats.npz", check_mvn_stats),
          ("pitch_normalize_conf", "stats_file"): ("pitch_stats.npz", check_mvn_stats),
          ("energy_normalize_conf", "stats_file"): ("energy_stats.npz", check_mvn_stats)}


class Task:
    """What differs between the tasks: meta.yaml's keys (espnet2.bin.pack's), the config keys
    that show a config is the task's, and espnet2's task class."""

    def __init__(self, name, meta_config, meta_model, network):
        self.name, self.meta_config, self.meta_model, self.network = name, meta_config, meta_model, network

    def espnet2_task(self):
        if self.name == "asr":
            from espnet2.tasks.asr import ASRTask
            return ASRTask
        from espnet2.tasks.tts import TTSTask
        return TTSTask

    def check_config(self, config, name):
        """The config is this task's, and the recipe can tokenize text as the model did."""
        if self.network not in config or "token_list" not in config:
            raise ValueError(f"{name}: not an espnet2 {self.name.upper()} training config (no {self.network} / token_list)")
        if self.name == "asr" and (config.get("token_type") != "bpe" or not config.get("bpemodel")):
            raise ValueError(f"{name}: token_type {config.get('token_type')!r}; pinch's recipe "
                             "tokenizes with the model's BPE model (token_type bpe and a bpemodel)")
        if self.name == "tts" and config.get("token_type") not in ("char", "phn"):
            raise ValueError(f"{name}: token_type {config.get('token_type')!r}; the TTS recipe tokenizes text as "
                             "characters or phonemes (token_type char or phn), with the model's cleaner and g2p")


TASKS = {"asr": Task("asr", "asr_train_config", "asr_model_file", "encoder"),
         "tts": Task("tts", "train_config", "model_file", "tts")}


def locate(pack, task):
    """(config.yaml, model .pth) of an unpacked model: meta.yaml's, or the dir's only ones."""
    if (pack.root / "meta.yaml").is_file():
        meta = pack.file("meta.yaml", f"{pack.given}:")
        info = pack.mapping(meta)
        named = {k: v for part in ("yaml_files", "files") if isinstance(info.get(part), dict)
                 for k, v in info[part].items()}
        if not named.get(task.meta_config) or not named.get(task.meta_model):
            raise ValueError(f"{pack.name(meta)}: no yaml_files.{task.meta_config} / files.{task.meta_model}: "
                             f"not an ESPnet {task.name.upper()} model pack")
        return (pack.file(named[task.meta_config], f"{pack.name(meta)}: yaml_files.{task.meta_config}"),
                pack.file(named[task.meta_model], f"{pack.name(meta)}: files.{task.meta_model}"))
    configs, models = sorted(pack.root.rglob("config.yaml")), sorted(pack.root.rglob("*.pth"))
    if len(configs) != 1 or len(models) != 1:
        raise ValueError(f"{pack.given}: expected meta.yaml, or one config.yaml and one .pth; found "
                         f"{len(configs)} config.yaml and {len(models)} .pth")
    return tuple(pack.file(str(f.relative_to(pack.root)), f"{pack.given}:") for f in (configs[0], models[0]))


def model_options(config, task=TASKS["asr"]):
    """The options of a trained model's config.yaml. Why: it also records run-time values
    (``distributed``, ...) that espnet2's parser refuses as --config, and its data options, which
    a command line would append to; the model's options are what is kept."""
    actions = task.espnet2_task().get_parser()._actions
    keep = {a.dest for a in actions if not isinstance(a, argparse._AppendAction)} - {"config", "output_dir"}
    return {k: v for k, v in config.items() if k in keep}


def place(pretrained, out_dir, model_name, task="asr"):
    """Write ``out_dir``: config.yaml, tokens.txt, the files of COPIED it names and the checkpoint."""
    task = TASKS[task]
    out_dir = Path(out_dir)
    with atomic_output_dir(out_dir) as tmp:
        pack = Pack(pretrained, unpack(pretrained, tmp / "pack"))
        config_file, model_file = locate(pack, task)
        config = pack.mapping(config_file)
        task.check_config(config, pack.name(config_file))
        build = copy.deepcopy(config)  # paths into tmp, to build the network now
        for keys, (name, check) in COPIED.items():
            holders = [config, build]
            for key in keys[:-1]:
                holders = [h.get(key) if isinstance(h.get(key), dict) else {} for h in holders]
            value = holders[0].get(keys[-1])
            if value is None or (keys == ("token_list",) and isinstance(value, list)):
                continue
            source = pack.file(value, f"{pack.name(config_file)}: {'.'.join(keys)}", bases=(config_file.parent,))
            check(source, pack.name(source))
            shutil.copy(source, tmp / name)
            holders[0][keys[-1]], holders[1][keys[-1]] = str(out_dir.resolve() / name), str(tmp / name)
        if isinstance(config["token_list"], list):  # espnet2 writes the list itself into config.yaml
            (tmp / "tokens.txt").write_text("".join(f"{t}\n" for t in config["token_list"]), encoding="utf-8")
            config["token_list"], build["token_list"] = str(out_dir.resolve() / "tokens.txt"), str(tmp / "tokens.txt")
        if not (tmp / "tokens.txt").is_file():
            raise ValueError(f"{pack.name(config_file)}: its token_list is neither a list nor a file")
        model = task.espnet2_task().build_model(argparse.Namespace(**build))
        try:
            model.load_state_dict(load_state_dict(str(model_file)), strict=True)
        except RuntimeError as err:
            size = sum(1 for t in (tmp / "tokens.txt").read_text(encoding="utf-8").splitlines() if t)
            raise ValueError(f"{pack.name(model_file)} does not fit the network its config builds with its token "
                             f"list ({size} tokens): {' '.join(str(err).splitlines()[:3])}") from None
        config = model_options(config, task)
        with (tmp / "config.yaml").open("w", encoding="utf-8") as f:
            yaml_no_alias_safe_dump(config, f, indent=4, sort_keys=False)
        (tmp / "source").write_text(f"{Path(pretrained).resolve()}\n{model_file.relative_to(pack.root)}\n")
        shutil.copy(model_file, tmp / model_name)
        if pack.root == (tmp / "pack").resolve():
            shutil.rmtree(pack.root)
    return out_dir, config


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.espnet.bin.pretrained", description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="asr", help="the model's espnet2 task")
    parser.add_argument("--pretrained", required=True, help="model zip or directory (espnet_model_zoo layout)")
    parser.add_argument("--out_dir", required=True, help="the recipe's dense model directory")
    parser.add_argument("--model_name", default="valid.loss.ave.pth", help="file name the recipe decodes")
    args = parser.parse_args(argv)
    try:
        out_dir, config = place(args.pretrained, args.out_dir, args.model_name, args.task)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"pinch.espnet.bin.pretrained: error: {err}", file=sys.stderr)
        return 1
    network = TASKS[args.task].network
    print(f"pinch.espnet: {args.pretrained} -> {out_dir} ({network} {config[network]}, "
          f"token_type {config['token_type']}, normalize {config.get('normalize')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
