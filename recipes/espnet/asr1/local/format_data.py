#!/usr/bin/env python3
"""Stage 3: a Kaldi data dir into dump/raw with utt2num_samples, as asr.sh's format stage.

As asr.sh's format_wav_scp.py: an audio file that espnet2 reads as it is (any format
soundfile reads: wav, flac, ...) stays where it is (wav.scp keeps its path); a recording
cut by ``segments`` is cut, and the output of a wav.scp command (``cmd ... |``) taken, and
written as one flac file per utterance under DST/data/ (16-bit PCM, asr.sh's default
audio_format), wav.scp then naming those files by utterance id, so espnet2's sound reader
needs no segments. The other files are written sorted by id (LC_ALL=C), one space after the
id, the transcripts as written (no case folding, no normalisation); spk2utt is rebuilt from
utt2spk, utt2source kept where the corpus has one, and feats_type is raw. The dir is checked
first, so a broken line is reported with its file and line number.
"""
import argparse
import io
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import soundfile

from data_dir import is_command, read_data_dir
from pinch.data.atomic import atomic_output_dir
from pinch.scoring.by_source import UTT2SOURCE

AUDIO_FORMAT = "flac"  # asr.sh's default audio_format


def run_command(src, rec, entry):
    """The audio a wav.scp command writes to its standard output (as kaldiio reads it)."""
    proc = subprocess.run(entry.rstrip()[:-1], shell=True, capture_output=True)
    where = f"{src / 'wav.scp'}: {rec!r}"
    if proc.returncode != 0:
        err = " ".join(proc.stderr.decode(errors="replace").split())[-300:]
        raise ValueError(f"{where}: command failed (exit {proc.returncode}): {err}")
    try:
        audio, rate = soundfile.read(io.BytesIO(proc.stdout))
    except Exception as err:  # soundfile raises several types
        raise ValueError(f"{where}: the command's output is not audio soundfile reads: {err}") from None
    if audio.ndim != 1 or len(audio) == 0:
        raise ValueError(f"{where}: the command's output is not mono audio with samples")
    return audio, rate


def write_audio(tmp, final, data, utt, audio, rate):
    """One utterance's audio as DST/data/UTT.flac: its wav.scp entry and its sample count."""
    name = f"{utt}.{AUDIO_FORMAT}"
    soundfile.write(tmp / "data" / name, audio, rate, format=AUDIO_FORMAT.upper(), subtype="PCM_16")
    if data.rate is None:
        data.rate = rate  # a set of commands only: the first output's rate
    elif rate != data.rate:
        raise ValueError(f"{data.path / 'wav.scp'}: {utt!r} is {rate} Hz where the set's other audio is "
                         f"{data.rate} Hz: one sample rate per set (the recipe does not resample)")
    return str(final / "data" / name), len(audio)


def formatted_audio(data, tmp, final):
    """utt -> (wav.scp entry, number of samples) of every utterance of ``data``."""
    out = {}
    if data.segments is None:
        for utt, entry in data.wavs.items():
            if is_command(entry):
                out[utt] = write_audio(tmp, final, data, utt, *run_command(data.path, utt, entry))
            else:
                out[utt] = (entry, soundfile.info(entry).frames)
        return out
    commands = {}  # a command's recording, run once
    for utt, (rec, start, end) in sorted(data.segments.items()):
        entry = data.wavs[rec]
        if is_command(entry):
            if rec not in commands:
                commands[rec] = run_command(data.path, rec, entry)
            audio, rate = commands[rec]
            audio = audio[int(start * rate):] if end == -1 else audio[int(start * rate):int(end * rate)]
        else:
            rate = soundfile.info(entry).samplerate
            audio, rate = soundfile.read(entry, start=int(start * rate),
                                         stop=None if end == -1 else int(end * rate))
        if len(audio) == 0:
            raise ValueError(f"{data.path / 'segments'}: {utt!r} holds no samples of {rec!r}")
        out[utt] = write_audio(tmp, final, data, utt, audio, rate)
    return out


def write_table(path, table, keys):
    path.write_text("".join(f"{k} {table[k]}".rstrip() + "\n" for k in keys), encoding="utf-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--dst", type=Path, required=True)
    parser.add_argument("--scored", choices=["true", "false"], default="false",
                        help="a test set: every transcript non-empty and free of '(' and ')'")
    args = parser.parse_args()
    try:
        data = read_data_dir(args.src, scored=args.scored == "true")
        final = args.dst.absolute()
        with atomic_output_dir(final) as tmp:
            (tmp / "data").mkdir()
            audio = formatted_audio(data, tmp, final)
            if not any((tmp / "data").iterdir()):
                (tmp / "data").rmdir()
            utts = data.utts
            write_table(tmp / "wav.scp", {u: a[0] for u, a in audio.items()}, utts)
            write_table(tmp / "utt2num_samples", {u: a[1] for u, a in audio.items()}, utts)
            write_table(tmp / "text", data.text, utts)
            write_table(tmp / "utt2spk", data.utt2spk, utts)
            spk2utt = defaultdict(list)
            for utt in utts:
                spk2utt[data.utt2spk[utt]].append(utt)
            (tmp / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())),
                                         encoding="utf-8")
            if (args.src / UTT2SOURCE).is_file():
                (tmp / UTT2SOURCE).write_bytes((args.src / UTT2SOURCE).read_bytes())
            (tmp / "feats_type").write_text("raw\n", encoding="utf-8")
    except (ValueError, OSError) as err:
        sys.exit(f"format_data: {err}")
    cut = f", {len(data.wavs)} recordings cut by segments" if data.segments is not None else ""
    print(f"format_data: {args.src} -> {args.dst} ({len(utts)} utterances{cut})")


if __name__ == "__main__":
    main()
