#!/usr/bin/env python3
"""Stage 4: drop training utterances that are too short, too long or have empty text.

As asr.sh's "remove long/short data": the durations come from utt2num_samples, every
Kaldi file is restricted to the kept ids, and spk2utt is rebuilt from utt2spk.
"""
import argparse
import sys
from collections import defaultdict
from pathlib import Path

import soundfile

from pinch.data.atomic import atomic_output_dir
from pinch.data.kaldi import read_table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--dst", type=Path, required=True)
    parser.add_argument("--min_wav_duration", type=float, required=True)
    parser.add_argument("--max_wav_duration", type=float, required=True)
    args = parser.parse_args()
    if not 0 <= args.min_wav_duration < args.max_wav_duration:
        sys.exit("filter_data: need 0 <= --min_wav_duration < --max_wav_duration")
    try:
        tables = {n: read_table(args.src / n, allow_empty_value=(n == "text"))
                  for n in ("wav.scp", "text", "utt2spk", "utt2num_samples")}
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"filter_data: {err}")
    first = next(iter(tables["wav.scp"].values()))
    rate = soundfile.info(first).samplerate
    keep = [
        utt for utt, n in tables["utt2num_samples"].items()
        if args.min_wav_duration <= int(n) / rate <= args.max_wav_duration
        and tables["text"].get(utt, "").strip()
    ]
    if not keep:
        sys.exit(f"filter_data: no utterance of {args.src} is within "
                 f"[{args.min_wav_duration}, {args.max_wav_duration}] s with non-empty text")
    spk2utt = defaultdict(list)
    for utt in keep:
        spk2utt[tables["utt2spk"][utt]].append(utt)
    with atomic_output_dir(args.dst) as tmp:
        for name, table in tables.items():
            (tmp / name).write_text("".join(f"{u} {table[u]}\n" for u in keep), encoding="utf-8")
        (tmp / "spk2utt").write_text(
            "".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())), encoding="utf-8")
        (tmp / "feats_type").write_text("raw\n", encoding="utf-8")
    print(f"filter_data: kept {len(keep)} of {len(tables['wav.scp'])} utterances of {args.src}")


if __name__ == "__main__":
    main()
