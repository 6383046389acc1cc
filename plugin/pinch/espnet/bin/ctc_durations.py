"""Durations from a CTC forced alignment of the recordings, for an ESPnet FastSpeech or FastSpeech2.

The other way egs2 users get durations (besides a Tacotron2 teacher, `teacher_durations`): an
ESPnet ASR model with a CTC head over characters, trained on the recordings, aligns each
sentence's characters to its audio (torchaudio's ``forced_align``; `pinch.data.durations`). Its
tokens are the TTS model's: each TTS token is looked up by name in the aligner's token list, so
both must be characters (``<space>`` between words). Written per set as ``OUT/durations`` (what
``--train_data_path_and_name_and_type OUT/durations,durations,text_int`` reads: one count per
token and one for the end of sentence, summing to the student's frames of the recording) and
``OUT/align_scores`` (the aligned frames' mean posterior: near 1 for a confident alignment).

    python -m pinch.espnet.bin.ctc_durations \\
        --asr_train_config exp/asr_train_asr_conformer_ctc_raw_char/config.yaml \\
        --asr_model_file exp/asr_train_asr_conformer_ctc_raw_char/valid.loss.ave.pth \\
        --student_config conf/train_fastspeech2.yaml --token_list data/token_list/char/tokens.txt \\
        --set dump/raw/train exp/aligner/train --set dump/raw/dev exp/aligner/dev
"""
import argparse
import sys
from pathlib import Path

from pinch.data.durations import durations_from_ctc, write_durations
from pinch.data.kaldi import check_same_ids, read_table
from pinch.espnet.bin.teacher_durations import read_yaml, reduction_factors, token_list
from pinch.offline import forbid_downloads


def check_student(aligner, student, student_path, tokens):
    """The student trains on characters the aligner knows, its pitch and energy on the frames its
    model reduces to."""
    if student.get("tts") not in ("fastspeech", "fastspeech2"):
        raise ValueError(f"{student_path}: tts {student.get('tts')} does not train on durations "
                         "(FastSpeech and FastSpeech2 do)")
    for who, config in (("the aligner", aligner), (str(student_path), student)):
        if config.get("token_type", "char") != "char":
            raise ValueError(f"{who}: token_type {config.get('token_type')}, not char: a CTC alignment gives "
                             "durations of characters (train the aligner with --token_type char)")
    factors = reduction_factors(student)
    r = factors["tts_conf.reduction_factor"]
    for key, value in factors.items():
        if value != r:
            raise ValueError(f"{student_path}: {key} is {value}, the model's reduction factor {r}: durations "
                             "count the model's reduced frames")
    known = set(token_list(aligner, "the aligner"))
    missing = sorted(t for t in tokens if t not in known and not t.startswith("<"))
    if missing:
        raise ValueError(f"the aligner's token list lacks {len(missing)} of the student's characters "
                         f"({' '.join(missing[:10])}): it cannot place them")


def load_aligner(train_config, model_file):
    """The aligner as espnet2's ASR task builds it from its config, its weights read as data."""
    from pinch.espnet.bin.bake import load_task
    from pinch.export.checkpoint import load_state_dict

    config = read_yaml(train_config)
    model = load_task("asr").build_model(argparse.Namespace(**config))
    model.load_state_dict(load_state_dict(str(model_file)), strict=True)
    if getattr(model, "ctc", None) is None or getattr(model, "ctc_weight", 1.0) == 0.0:
        raise ValueError(f"{train_config}: the model has no CTC head to align with (ctc_weight 0)")
    return config, model.eval()


def student_frames(student):
    """A function giving the student's reduced frames of a waveform (its features, by espnet2's own
    extractor, over the model's reduction factor: what its durations count), and its sample rate."""
    import torch
    from espnet2.tasks.tts import feats_extractor_choices

    extract = feats_extractor_choices.get_class(student.get("feats_extract", "fbank"))(
        **(student.get("feats_extract_conf") or {}))

    r = reduction_factors(student)["tts_conf.reduction_factor"]

    def frames(speech):
        with torch.no_grad():
            return int(extract(speech[None], torch.tensor([len(speech)]))[1][0]) // r

    return frames, extract.get_parameters().get("fs")


def student_text(tokens, cleaner):
    """The student's token ids of a sentence, as its training preprocessor makes them."""
    from espnet2.train.preprocessor import CommonPreprocessor

    preprocess = CommonPreprocessor(train=False, token_type="char", token_list=tokens,
                                    text_cleaner=None if cleaner in (None, "none") else cleaner)
    return lambda utt, text: preprocess(utt, {"text": text})["text"].tolist()


def durations_of_set(model, fs, student, student_tokens, cleaner, asr_tokens, data_dir):
    """{utt: (durations, score)} of every sentence of a Kaldi dir (text, wav.scp)."""
    import soundfile as sf
    import torch

    frames, student_fs = student_frames(student)
    text_ids = student_text(student_tokens, cleaner)
    index = {t: i for i, t in enumerate(asr_tokens)}
    texts, wavs = read_table(data_dir / "text", allow_empty_value=True), read_table(data_dir / "wav.scp")
    out = {}
    for utt in check_same_ids(texts, wavs, data_dir / "text", data_dir / "wav.scp"):
        speech, rate = sf.read(wavs[utt], dtype="float32")
        for who, want in (("the aligner's", fs), ("the student's", student_fs)):
            if want and rate != want:
                raise ValueError(f"{data_dir}/wav.scp: {utt} is at {rate} Hz, {who} features at {want} Hz")
        speech = torch.from_numpy(speech)
        chars = [student_tokens[i] for i in text_ids(utt, texts[utt])]
        unknown = sorted({c for c in chars if c not in index or c.startswith("<") and c != "<space>"})
        if unknown:
            raise ValueError(f"{data_dir}/text: {utt}: the aligner cannot place {' '.join(unknown)}")
        with torch.no_grad():
            enc, _ = model.encode(speech[None], torch.tensor([len(speech)]))
            log_probs = model.ctc.log_softmax(enc)[0]
        try:
            out[utt] = durations_from_ctc(log_probs, [index[c] for c in chars], index["<blank>"], frames(speech))
        except ValueError as err:
            raise ValueError(f"{data_dir}: {utt}: {err}") from None
    return out


def main(cmd=None):
    forbid_downloads()  # espnet2's tasks import g2p_en, which fetches NLTK data
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asr_train_config", required=True, type=Path, help="the aligner's config.yaml")
    parser.add_argument("--asr_model_file", required=True, type=Path, help="the aligner's weights (.pth)")
    parser.add_argument("--student_config", required=True, type=Path,
                        help="the FastSpeech(2) config that will train on the durations")
    parser.add_argument("--token_list", required=True, type=Path, help="the student's token list (characters)")
    parser.add_argument("--cleaner", default="none", help="the student's text cleaner, as its training uses it")
    parser.add_argument("--set", nargs=2, action="append", required=True, metavar=("DATA_DIR", "OUT_DIR"),
                        type=Path, help="a Kaldi dir (text, wav.scp) and where its durations go; repeatable")
    args = parser.parse_args(cmd)
    try:
        for path in (args.asr_train_config, args.asr_model_file, args.student_config, args.token_list):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such file")
        student = read_yaml(args.student_config)
        tokens = token_list({"token_list": str(args.token_list)}, args.token_list)
        config, model = load_aligner(args.asr_train_config, args.asr_model_file)
        check_student(config, student, args.student_config, tokens)
        fs = (config.get("frontend_conf") or {}).get("fs", 16000)
        for data_dir, out_dir in args.set:
            found = durations_of_set(model, fs, student, tokens, args.cleaner, token_list(config, "the aligner"),
                                     data_dir)
            print(f"{data_dir}: {write_durations(out_dir, found, 'align_scores')}")
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"ctc_durations: {err}")


if __name__ == "__main__":
    main()
