#!/usr/bin/env python3
"""Stage 3: copy a Kaldi data dir into dump/raw with utt2num_samples, as asr.sh's format stage.

The audio stays where it is (wav.scp keeps its paths); what asr.sh adds and later stages
read is the length of every recording (utt2num_samples, for filtering) and feats_type.
The dir is checked first, so a broken line is reported with its file and line number.
"""
import argparse
import shutil
import sys
from pathlib import Path

import soundfile

from pinch.data.atomic import atomic_output_dir
from pinch.data.kaldi import KALDI_FILES, read_table
from pinch.scoring.by_source import UTT2SOURCE
from pinch.data.validate import check_data_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--dst", type=Path, required=True)
    args = parser.parse_args()
    try:
        check_data_dir(args.src)
        wavs = read_table(args.src / "wav.scp")
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"format_data: {err}")
    with atomic_output_dir(args.dst) as tmp:
        for name in KALDI_FILES + ((UTT2SOURCE,) if (args.src / UTT2SOURCE).is_file() else ()):
            shutil.copyfile(args.src / name, tmp / name)
        lines = [f"{utt} {soundfile.info(path).frames}" for utt, path in wavs.items()]
        (tmp / "utt2num_samples").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (tmp / "feats_type").write_text("raw\n", encoding="utf-8")
    print(f"format_data: {args.src} -> {args.dst} ({len(wavs)} utterances)")


if __name__ == "__main__":
    main()
