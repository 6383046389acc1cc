#!/usr/bin/env python3
"""Stage 1 with your own data (--corpus none): check a Kaldi-style data dir before any stage uses it.

wav.scp, text and utt2spk (segments optional): the files, their ids, every audio file
(soundfile reads it, mono, one sample rate per set) and, for a test set (--scored true),
transcripts sclite can score. The first problem is printed as one line naming its file.
"""
import argparse
import sys
from pathlib import Path

from data_dir import is_command, read_data_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--scored", choices=["true", "false"], default="false",
                        help="a test set: every transcript non-empty and free of '(' and ')'")
    args = parser.parse_args()
    try:
        data = read_data_dir(args.dir, scored=args.scored == "true")
    except (ValueError, OSError) as err:
        sys.exit(f"check_data: {err}")
    commands = sum(1 for e in data.wavs.values() if is_command(e))
    print(f"check_data: {args.dir}: {len(data.text)} utterances, "
          + (f"{len(data.wavs)} recordings cut by segments, " if data.segments is not None else "")
          + (f"{data.rate} Hz" if data.rate else "audio from commands")
          + (f", {commands} wav.scp entries are commands (run in stage 3)" if commands and data.rate else "")
          + ", ok")


if __name__ == "__main__":
    main()
