"""Durations from a teacher's attention, for an ESPnet FastSpeech or FastSpeech2 to learn from.

egs2's way (tts.sh's ``--teacher_dumpdir``): a Tacotron2 decodes the training and validation
sentences with teacher forcing, and espnet2's DurationCalculator turns its attention into
decoder frames per token (the end-of-sentence token included). Written per set as
``OUT/durations`` (``utt d1 d2 ...``, what ``--train_data_path_and_name_and_type
OUT/durations,durations,text_int`` reads) and ``OUT/focus_rates`` (how sharply each frame
attends to one token: near 1 for a clean alignment). The student must tokenize as the teacher
does and reduce frames by the same factor (its ``reduction_factor`` and its pitch and energy
extractors'), or its durations would not fit its tokens and frames: both are checked here, not
deep inside training.

    python -m pinch.espnet.bin.teacher_durations \\
        --train_config exp/tts_train_tacotron2_raw_char/config.yaml \\
        --model_file exp/tts_train_tacotron2_raw_char/valid.loss.ave.pth \\
        --student_config conf/train_fastspeech2.yaml \\
        --set dump/raw/train exp/teacher/train --set dump/raw/dev exp/teacher/dev
"""
import argparse
import sys
from pathlib import Path

import yaml

from pinch.data.durations import write_durations
from pinch.data.kaldi import check_same_ids, read_table
from pinch.offline import forbid_downloads


def read_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def token_list(config, where):
    """The token list a config names (a list, or a file of one token per line)."""
    tokens = config.get("token_list")
    if isinstance(tokens, str):
        tokens = Path(tokens).read_text(encoding="utf-8").split("\n")
        tokens = [t.strip() for t in tokens if t.strip()]
    if not tokens:
        raise ValueError(f"{where}: no token_list")
    return list(tokens)


def reduction_factors(config):
    """The frame reduction factor of a TTS config's model and of its pitch and energy extractors."""
    factors = {"tts_conf.reduction_factor": (config.get("tts_conf") or {}).get("reduction_factor", 1)}
    for key in ("pitch_extract", "energy_extract"):
        if config.get(key):
            factors[f"{key}_conf.reduction_factor"] = (config.get(f"{key}_conf") or {}).get("reduction_factor") or 1
    return factors


def check_student(teacher, student, student_path, tokens=None):
    """The student tokenizes as the teacher (its config's settings, and ``tokens``, the token list
    it trains with where the config names none) and reduces frames by the teacher's factor."""
    if student.get("tts") not in ("fastspeech", "fastspeech2"):
        raise ValueError(f"{student_path}: tts {student.get('tts')} does not train on durations "
                         "(FastSpeech and FastSpeech2 do)")
    for key in ("token_type", "cleaner", "g2p"):  # where the student's config sets them (else the recipe's)
        if key in student and student[key] != teacher.get(key):
            raise ValueError(f"{student_path}: {key} {student.get(key)!r}, the teacher's {teacher.get(key)!r}: "
                             "durations count the teacher's tokens")
    if "token_list" in student:
        tokens = token_list(student, student_path)
    if tokens is not None and tokens != token_list(teacher, "the teacher"):
        raise ValueError(f"{student_path}: its token list differs from the teacher's: durations count the "
                         "teacher's tokens")
    r = reduction_factors(teacher)["tts_conf.reduction_factor"]
    for key, value in reduction_factors(student).items():
        if value != r:
            raise ValueError(f"{student_path}: {key} is {value}, the teacher's reduction factor {r}: "
                             "the durations count the teacher's reduced frames")


def load_teacher(train_config, model_file):
    """The teacher as espnet2's TTS task builds it from its config, its weights read as data."""
    from pinch.espnet.bin.bake import load_task
    from pinch.export.checkpoint import load_state_dict

    config = read_yaml(train_config)
    task = load_task("tts")
    model = task.build_model(argparse.Namespace(**config))
    model.load_state_dict(load_state_dict(str(model_file)), strict=True)
    if type(model.tts).__name__ not in ("Tacotron2", "Transformer"):
        raise ValueError(f"{train_config}: tts {config.get('tts')} has no attention to take durations from "
                         "(a Tacotron2 or Transformer TTS teaches)")
    return config, model.eval(), task.build_preprocess_fn(argparse.Namespace(**config), False)


def durations_of_set(model, preprocess, fs, data_dir):
    """{utt: (durations, focus rate)} of every sentence of a Kaldi dir (text, wav.scp)."""
    import soundfile as sf
    import torch
    from espnet2.tts.utils import DurationCalculator

    calculator = DurationCalculator()
    texts, wavs = read_table(data_dir / "text", allow_empty_value=True), read_table(data_dir / "wav.scp")
    out = {}
    for utt in check_same_ids(texts, wavs, data_dir / "text", data_dir / "wav.scp"):
        speech, rate = sf.read(wavs[utt], dtype="float32")
        if rate != fs:
            raise ValueError(f"{data_dir}/wav.scp: {utt} is at {rate} Hz, the teacher's features at {fs} Hz")
        text = preprocess(utt, {"text": texts[utt]})["text"]
        with torch.no_grad():  # scoped: a caller in the same process (a test) keeps its gradients
            result = model.inference(text=torch.tensor(text), speech=torch.tensor(speech),
                                     use_teacher_forcing=True)
        duration, focus_rate = calculator(result["att_w"])
        out[utt] = (duration.long().tolist(), float(focus_rate))
    return out


def main(cmd=None):
    forbid_downloads()  # espnet2's TTS task imports g2p_en, which fetches NLTK data
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_config", required=True, type=Path, help="the teacher's config.yaml")
    parser.add_argument("--model_file", required=True, type=Path, help="the teacher's weights (.pth)")
    parser.add_argument("--student_config", required=True, type=Path,
                        help="the FastSpeech(2) config that will train on the durations")
    parser.add_argument("--token_list", type=Path,
                        help="the student's token list, where its config names none (the recipe's)")
    parser.add_argument("--set", nargs=2, action="append", required=True, metavar=("DATA_DIR", "OUT_DIR"),
                        type=Path, help="a Kaldi dir (text, wav.scp) and where its durations go; repeatable")
    args = parser.parse_args(cmd)
    try:
        for path in (args.train_config, args.model_file, args.student_config, args.token_list):
            if path is not None and not path.is_file():
                raise FileNotFoundError(f"{path}: no such file")
        config, model, preprocess = load_teacher(args.train_config, args.model_file)
        tokens = token_list({"token_list": str(args.token_list)}, args.token_list) if args.token_list else None
        check_student(config, read_yaml(args.student_config), args.student_config, tokens)
        fs = (config.get("feats_extract_conf") or {}).get("fs")
        for data_dir, out_dir in args.set:
            found = durations_of_set(model, preprocess, fs, data_dir)
            print(f"{data_dir}: {write_durations(out_dir, found, 'focus_rates')}")
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"teacher_durations: {err}")


if __name__ == "__main__":
    main()
