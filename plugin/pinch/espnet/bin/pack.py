"""``python -m pinch.espnet.bin.pack``: a scored model dir -> a zip in espnet_model_zoo's layout.

The zip is written by espnet2's own packer, with a model card as its README.md.

Why: a compressed model is shared as a file others load with espnet2 alone, and its figures
mean something only beside what they were measured on. espnet2's packer (``espnet2.bin.pack
asr``, as asr.sh's packing stage calls it) names members by their paths relative to the working
directory and stores the config as written, so the files are laid out in a staging dir first
under asr.sh's member names (``exp/<run>/config.yaml``, ``exp/<run>/model.pth``,
``data/token_list/<dir>/bpe.model``, ``exp/asr_stats/train/feats_stats.npz``), the config's
paths rewritten to those names and its training run's options (data, output dir, initial
weights, launcher) dropped. The decoding config goes in as ``conf/<name>.yaml``, RESULTS.md
and bake's sparsity.json beside the model. The card gives the WER and CER of each scored test
set, the zeros of the whole model.pth, both sizes, the speed where the deploy stage measured
one, and the command that made it. The network espnet2 builds from the packed config must take
the weights strictly, and no member may name a directory of this machine (or hold an absolute
path in its YAML): either refuses the pack, which is written under a temporary name until then.
The zip's comment pads it to the size its card states.

    python -m pinch.espnet.bin.pack --asr_train_config exp/run/baked/config.yaml \
        --asr_model_file exp/run/baked/model.pth --inference_config conf/decode_ctc.yaml \
        --inference_tag decode_ctc_asr_model_valid.loss.ave --test_sets test_clean test_other \
        --command "./run.sh --stage 12" [--deploy_json exp/DEPLOY.json]   # -> exp/run/baked/packed/run_model.zip
"""
import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import yaml
from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

from pinch.data.atomic import atomic_file, check_outputs
from pinch.espnet.bin.pretrained import model_options

# Files a config names, by their keys: packed under this dir, in a dir named as theirs.
NAMED_FILES = {("token_list",): "data/token_list", ("bpemodel",): "data/token_list",
               ("non_linguistic_symbols",): "data/token_list", ("normalize_conf", "stats_file"): "exp/asr_stats"}
# How the training run started and what it read besides its data: this machine's files, which
# the model does not need (model_options drops the data, the output dir and the config itself).
RUN_INPUTS = ("init_param", "pretrain_path", "dist_init_method", "deepspeed_config", "rir_scp", "noise_scp")
# An absolute path in text (not the tail of a relative one, ./run.sh or conf/x, nor of a URL).
ABSOLUTE = re.compile(r"(?<![\w./~:-])/[^\s'\",:;=]+")
# The card states the zip's size, but espnet2's meta.yaml stamps the packing time, a float whose
# repr varies in length, so a repack's size jitters by a byte or two. The card states the size of a
# first pack plus this slack, and the zip's comment pads it to exactly that.
SIZE_SLACK = 64


def run_name(model_dir):
    """The recipe's name of a model dir: its own, or its run's for a baked dir (exp/run/baked)."""
    return model_dir.parent.name if model_dir.name == "baked" else model_dir.name


def read_scores(decode_dir, test_sets):
    """Each test set's score_wer/result.json, as the recipe's scoring stage (pinch.scoring score) wrote it."""
    scores = {}
    for dset in test_sets:
        path = decode_dir / dset / "score_wer" / "result.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (decode and score {dset} first)")
        scores[dset] = json.loads(path.read_text(encoding="utf-8"))
    return scores


def measured_speed(deploy_json, model_dir):
    """(note, rows) of the deploy stage's table for this model dir's ONNX forms; None: not measured."""
    if deploy_json is None:
        return None
    deploy_json = Path(deploy_json)
    if not deploy_json.is_file():
        raise FileNotFoundError(f"{deploy_json}: no such file (--deploy_json)")
    table = json.loads(deploy_json.read_text(encoding="utf-8"))
    name = os.path.relpath(model_dir, deploy_json.absolute().parent)  # deploy.report's names: relative to exp/
    rows = [r for r in table["rows"] if r["model"] == name]
    return (table["note"], rows) if rows else None


def lay_out(root, config, config_file, model_file, inference_config, name):
    """Copy the pack's files under ``root``, the config's paths rewritten to their member names;
    returns {member: the file it came from}, the config's and the model's first."""
    config = {k: v for k, v in model_options(config).items() if k not in RUN_INPUTS}
    config_member, model_member = f"exp/{name}/config.yaml", f"exp/{name}/{model_file.name}"
    members = {config_member: config_file, model_member: model_file}
    for keys, base in NAMED_FILES.items():
        holder = config
        for key in keys[:-1]:
            holder = holder.get(key) if isinstance(holder.get(key), dict) else {}
        value = holder.get(keys[-1])
        if not isinstance(value, str):  # unset, or the token list itself
            continue
        source = Path(value)  # relative: to the working directory, as espnet2 reads it
        if not source.is_file():
            raise FileNotFoundError(f"{config_file}: {'.'.join(keys)} {value}: no such file")
        member = str(PurePosixPath(base, source.parent.name, source.name))
        holder[keys[-1]] = member
        members[member] = source
    members[f"conf/{inference_config.name}"] = inference_config
    for record in ("RESULTS.md", "sparsity.json"):  # the recipe's scores and bake's measurement
        if (model_file.parent / record).is_file():
            members[f"exp/{name}/{record}"] = model_file.parent / record
    for member, source in members.items():
        (root / member).parent.mkdir(parents=True, exist_ok=True)
        if member == config_member:
            with (root / member).open("w", encoding="utf-8") as f:
                yaml_no_alias_safe_dump(config, f, indent=4, sort_keys=False)
        elif source.suffix == ".model" and member.startswith("data/token_list/"):
            portable_bpe(source, root / member)
        elif member.endswith("/RESULTS.md"):  # its heading names the model dir as the recipe ran it
            text = source.read_text(encoding="utf-8")
            for spelled in sorted({str(source.parent), str(source.parent.resolve())}, key=len, reverse=True):
                text = text.replace(spelled, str(PurePosixPath(member).parent))
            (root / member).write_text(text, encoding="utf-8")
        else:
            shutil.copy(source, root / member)
    return members


def portable_bpe(source, dest):
    """The sentencepiece model without where it was trained: sentencepiece keeps its training
    input and output prefix (paths of the machine that trained it, often absolute) in the
    model's trainer spec, which tokenization never reads; pieces and normalizer stay as they are."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    try:
        proto.ParseFromString(source.read_bytes())
    except Exception as err:  # protobuf's DecodeError, and whatever a file not of its kind raises
        raise ValueError(f"{source}: not a sentencepiece model ({err.__class__.__name__})") from None
    del proto.trainer_spec.input[:]
    proto.trainer_spec.model_prefix = PurePosixPath(proto.trainer_spec.model_prefix).name
    dest.write_bytes(proto.SerializeToString())


def check_loads(root, config_member, model_member, config_file, model_file):
    """The network espnet2's own ASR task builds from the packed config takes the weights strictly."""
    from espnet2.tasks.asr import ASRTask

    from pinch.export.checkpoint import load_state_dict

    with contextlib.chdir(root):
        config = yaml.safe_load(Path(config_member).read_text(encoding="utf-8"))
        try:
            model = ASRTask.build_model(argparse.Namespace(**config))
        except ValueError as err:
            raise ValueError(f"{config_file}: espnet2 alone cannot build this model: {err}") from None
        try:
            model.load_state_dict(load_state_dict(model_member), strict=True)
        except RuntimeError as err:
            raise ValueError(f"{model_file} does not fit the network espnet2 builds from {config_file}: "
                             f"{' '.join(str(err).splitlines()[:3])}") from None


def without_machine_paths(text):
    """``text`` with each absolute path shown by its last component; whether any was."""
    shown = ABSOLUTE.sub(lambda m: PurePosixPath(m.group()).name, text)
    return shown, shown != text


def machine_roots(paths):
    """Directories of this machine that no member may name: the top two levels of each path
    (as given and resolved), of the working directory and of the home directory, each with the
    slash a path under it has (a bare ``/root`` is 5 bytes a weights file may hold by chance)."""
    roots = set()
    for path in [*paths, Path.cwd(), Path.home()]:
        for full in (Path(path).absolute(), Path(path).resolve()):
            if len(full.parts) > 1:
                roots.add(f"{Path(*full.parts[:3])}/")
    return roots


def absolute_paths(value, key=""):
    """(key, value) of each string in a loaded YAML that is an absolute path (tokens aside)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k != "token_list":
                yield from absolute_paths(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from absolute_paths(v, f"{key}[{i}]")
    elif isinstance(value, str) and PurePosixPath(value).is_absolute() and len(value) > 1:
        yield key, value


def check_members(zip_path, roots):
    """Refuse a zip with a member outside it, or naming this machine: a directory of ``roots`` in
    its bytes, or an absolute path as a value of its YAML."""
    with zipfile.ZipFile(zip_path) as z:
        for name in z.namelist():
            if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
                raise ValueError(f"member {name}: outside the pack")
            data = z.read(name)
            for root in sorted(roots):
                if root.encode() in data:
                    raise ValueError(f"member {name} names {root}, a directory of this machine: not packed")
            found = next(absolute_paths(yaml.safe_load(data)), None) if name.endswith(".yaml") else None
            if found:
                raise ValueError(f"member {name}: {found[0]} {found[1]} is an absolute path: not packed")


def mb(size):
    return f"{size:,} bytes ({size / 1e6:.2f} MB)"


def model_card(zip_name, model_member, decode_member, scores, inference_tag, sparsity, bake_record, sizes, speed,
               command):
    """README.md of the pack: what the model is, its scores, zeros, sizes and speed, and how it was made."""
    how = (f", compressed by pinch ({bake_record['method']}, target sparsity {bake_record['target_sparsity']}) "
           "and baked into plain weights" if bake_record else "")
    name = Path(zip_name).stem
    lines = [f"# {name}", "", f"An ESPnet ASR model{how}: espnet2 loads it with no plugin.", "",
             "## Results", "",
             f"Decoded with `espnet2.bin.asr_inference` and `{decode_member}` ({inference_tag}), scored by sclite "
             "as the recipe scores: the text as written, and normalized (Whisper's English normalizer).", "",
             "|test set|utterances|words|WER %|CER %|WER % normalized|CER % normalized|",
             "|---|---|---|---|---|---|---|"]
    for dset, s in scores.items():
        norm = s.get("normalized") or {}
        cells = [dset, s["utterances"], s["word"]["ref_tokens"], f"{s['wer']:.2f}", f"{s['cer']:.2f}",
                 *(f"{norm[k]:.2f}" if k in norm else "-" for k in ("wer", "cer"))]
        lines.append("|" + "|".join(map(str, cells)) + "|")
    lines += ["", "## Sparsity", "",
              f"- whole model: {sparsity['sparsity']:.2%} zeros: {sparsity['nonzero']:,} of the "
              f"{sparsity['params']:,} values of `{model_member}` are non-zero (every floating-point tensor)"]
    if bake_record:
        lines.append(f"- gated matrices: {bake_record['sparsity_gated']:.2%} zeros of {bake_record['gated_params']:,} "
                     "weights (bake's `sparsity.json`)")
    else:
        lines.append("- gated matrices: not known (no sparsity.json of pinch's bake beside the model)")
    lines += ["", "## Size", "", f"- `{model_member}`: {mb(sizes[0])}", f"- this zip: {mb(sizes[1])}", "",
              "## Speed", ""]
    if speed:
        note, rows = speed
        lines += ["The model in this zip (PyTorch): not measured. Its ONNX forms, by the recipe's deploy stage "
                  f"(not in this zip): {note}", "",
                  "|form|runtime|size MB|speed x dense fp32 ONNX [range]|ms|", "|---|---|---|---|---|"]
        lines += [f"|{r['form']}|{r['runtime']}|{r['size_mb']:.2f}|{r['latency_ratio']:.2f} "
                  f"[{r['latency_ratio_range'][0]:.2f}, {r['latency_ratio_range'][1]:.2f}]|{r['latency_ms']:.1f}|"
                  for r in rows]
    else:
        lines.append("Not measured.")
    shown, shortened = without_machine_paths(command)
    lines += ["", "## Made by", "", "```sh", shown, "```", ""]
    if shortened:
        lines += ["(absolute paths of the machine that made it are shown by their last component)", ""]
    lines += ["## Use", "", "```python", "import yaml",
              "from espnet2.bin.asr_inference import Speech2Text",
              "from espnet2.main_funcs.pack_funcs import unpack", "",
              f'files = unpack("{zip_name}", "{name}")  # asr_train_config, asr_model_file',
              f'decode = yaml.safe_load(open("{name}/{decode_member}"))',
              "speech2text = Speech2Text(**files, **decode)", "```", ""]
    return "\n".join(lines)


def pack_model_dir(config_file, model_file, inference_config, inference_tag, test_sets, command,
                   outpath=None, deploy_json=None):
    """Write the zip (atomically); returns its path."""
    from espnet2.bin.pack import main as espnet2_pack

    from pinch.cli.report import summarize

    config_file, model_file, inference_config = Path(config_file), Path(model_file), Path(inference_config)
    model_dir = model_file.absolute().parent
    name = run_name(model_dir)
    out = Path(outpath or model_dir / "packed" / f"{name}_{model_file.stem}.zip").absolute()
    inputs = {"--asr_train_config": config_file, "--asr_model_file": model_file, "--inference_config": inference_config}
    for option, path in inputs.items():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file ({option})")
    if out.suffix != ".zip":
        raise ValueError(f"{out}: --outpath must end in .zip (espnet_model_zoo's packs are zips)")
    check_outputs({"--outpath": out}, inputs)
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    if not isinstance(config, dict) or "encoder" not in config or "token_list" not in config:
        raise ValueError(f"{config_file}: not an espnet2 ASR training config (no encoder / token_list)")
    if config.get("pruning"):
        raise ValueError(f"{config_file}: a pruning run's model still has its gates; bake it first "
                         "(python -m pinch.espnet.bin.bake)")
    scores = read_scores(model_dir / inference_tag, test_sets)
    speed = measured_speed(deploy_json, model_dir)
    bake_record = model_dir / "sparsity.json"
    bake_record = json.loads(bake_record.read_text(encoding="utf-8")) if bake_record.is_file() else None

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.staging-", dir=out.parent) as staging, \
            atomic_file(out) as part:
        root = Path(staging)
        members = lay_out(root, config, config_file, model_file, inference_config, name)
        config_member, model_member, *options = members
        check_loads(root, config_member, model_member, config_file, model_file)
        sparsity = summarize(str(model_file))

        def pack_with_card(size):
            card = model_card(out.name, model_member, f"conf/{inference_config.name}", scores, inference_tag,
                              sparsity, bake_record, (model_file.stat().st_size, size), speed, command)
            (root / "README.md").write_text(card, encoding="utf-8")
            with contextlib.chdir(root):
                espnet2_pack(["asr", "--asr_train_config", config_member, "--asr_model_file", model_member,
                              *(a for m in [*options, "README.md"] for a in ("--option", m)), "--outpath", str(part)])
            return part.stat().st_size

        stated = pack_with_card(0) + SIZE_SLACK
        short = stated - pack_with_card(stated)
        if not 0 <= short <= 2 * SIZE_SLACK:
            raise RuntimeError(f"{out}: the zip came out {-short:+,} bytes off the size its card states; run again")
        with zipfile.ZipFile(part, "a") as packed:
            packed.comment = b" " * short
        check_members(part, machine_roots([*members.values(), *([Path(deploy_json)] if deploy_json else [])]))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.espnet.bin.pack", description=__doc__.split("\n")[0])
    parser.add_argument("--asr_train_config", required=True, help="config.yaml of the model dir")
    parser.add_argument("--asr_model_file", required=True, help="its weights (baked model.pth, valid.loss.ave.pth)")
    parser.add_argument("--inference_config", required=True, help="the decoding config the scores were made with")
    parser.add_argument("--inference_tag", required=True, help="<model dir>/<tag>/<test set>/score_wer/result.json")
    parser.add_argument("--test_sets", nargs="+", required=True)
    parser.add_argument("--command", required=True, help="the command that made the model, for the card")
    parser.add_argument("--deploy_json", help="the deploy stage's DEPLOY.json: the speed of this model's ONNX forms")
    parser.add_argument("--outpath", help="the zip (default: <model dir>/packed/<run>_<model file stem>.zip)")
    args = parser.parse_args(argv)
    try:
        out = pack_model_dir(args.asr_train_config, args.asr_model_file, args.inference_config, args.inference_tag,
                             args.test_sets, args.command, args.outpath, args.deploy_json)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"pinch.espnet.bin.pack: error: {err}", file=sys.stderr)
        return 1
    print(f"pinch.espnet: {args.asr_model_file} -> {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
