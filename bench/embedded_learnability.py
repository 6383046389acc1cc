#!/usr/bin/env python3
"""Is the embedded corpus learnable in the CPU budget? Train a small Conformer CTC on it.

Why: the default corpus is sized so that a small Conformer CTC (~2.5M parameters)
reaches a test_clean WER below 10% in about 10 minutes of CPU training. This trains
torchaudio's Conformer (conv2d subsampling x4, characters, greedy CTC decoding, the
SpecAugment masks of the ESPnet recipe's config) for a wall-clock or step budget and
scores test_clean/test_other with pinch.scoring (sclite).

Usage: python bench/embedded_learnability.py --data DIR [--minutes 10] [--steps N] [--batch 8]
Prints a table and writes JSON (default bench/results/embedded_learnability.json).
"""
import argparse
import json
import math
import random
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch
import torchaudio
from torch import nn

from pinch.data.atomic import write_json_atomic
from pinch.data.embedded import OTHER_SPEEDS
from pinch.data.manifest import read_manifest
from pinch.scoring import score

CHARS = ["<blank>", " ", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]


class ConformerCTC(nn.Module):
    def __init__(self, n_mels=80, d=144, layers=4, heads=4, ffn=576, kernel=15):
        super().__init__()
        self.subsample = nn.Sequential(nn.Conv2d(1, d, 3, 2), nn.ReLU(), nn.Conv2d(d, d, 3, 2),
                                       nn.ReLU())
        self.proj = nn.Linear(d * (((n_mels - 1) // 2 - 1) // 2), d)
        self.encoder = torchaudio.models.Conformer(d, heads, ffn, layers, kernel, dropout=0.1)
        self.out = nn.Linear(d, len(CHARS))

    def forward(self, feats, lengths):
        x = self.subsample(feats.unsqueeze(1))                 # B, d, T', F'
        x = self.proj(x.transpose(1, 2).flatten(2))           # B, T', d
        lengths = ((lengths - 1) // 2 - 1) // 2
        x, lengths = self.encoder(x, lengths)
        return self.out(x).log_softmax(-1), lengths


def features(entries, mel):
    out = []
    for e in entries:
        audio, _ = sf.read(e["audio_filepath"], dtype="float32")
        out.append((mel(torch.from_numpy(audio)) + 1e-6).log().T)   # T, n_mels
    return out


def batches(n, batch, rng):
    order = list(range(n))
    rng.shuffle(order)
    return [order[i:i + batch] for i in range(0, n, batch)]


SPECAUG = nn.Sequential(*[torchaudio.transforms.FrequencyMasking(15) for _ in range(2)],
                        *[torchaudio.transforms.TimeMasking(20) for _ in range(2)])


def pad(feats, idx, mean, std, augment=False):
    xs = [(feats[i] - mean) / std for i in idx]
    if augment:  # masks work on (..., freq, time)
        xs = [SPECAUG(x.T).T for x in xs]
    lengths = torch.tensor([len(x) for x in xs])
    return nn.utils.rnn.pad_sequence(xs, batch_first=True), lengths


def decode(model, feats, mean, std, batch=16):
    model.eval()
    hyps = []
    with torch.no_grad():
        for i in range(0, len(feats), batch):
            x, lengths = pad(feats, range(i, min(i + batch, len(feats))), mean, std)
            logp, out_len = model(x, lengths)
            for row, n in zip(logp.argmax(-1), out_len):
                ids = torch.unique_consecutive(row[:n]).tolist()
                hyps.append(" ".join("".join(CHARS[t] for t in ids if t).split()))
    model.train()
    return hyps


def conditions(split_dir, ids):
    """Utterance ids of the whole split and, for test_other, of each distortion."""
    groups = {split_dir.name: set(ids)}
    synthesis = split_dir / "synthesis.jsonl"
    if split_dir.name == "test_other" and synthesis.is_file():
        made = [json.loads(line) for line in synthesis.read_text().splitlines()]
        groups["test_other:speed"] = {m["utt_id"] for m in made if m["speed"] in OTHER_SPEEDS}
        groups["test_other:noise"] = set(ids) - groups["test_other:speed"]
    return groups


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="embedded corpus directory")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=None,
                        help="stop after this many updates (CPU time varies with load)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU is shared)")
    parser.add_argument("--no-specaug", action="store_true")
    parser.add_argument("--eval-at", type=int, nargs="*", default=[],
                        help="also score test_clean after these steps (learning curve)")
    parser.add_argument("--out", help="keep decoding outputs and sclite reports here")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" /
                                              "embedded_learnability.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    data = Path(args.data)
    mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=400, hop_length=160, n_mels=80)
    t0 = time.time()
    train = read_manifest(data / "train" / "manifest.json")
    train_feats = features(train, mel)
    targets = [torch.tensor([CHARS.index(c) for c in e["text"]]) for e in train]
    stacked = torch.cat(train_feats[:500])
    mean, std = stacked.mean(0), stacked.std(0) + 1e-5
    feat_s = time.time() - t0
    clean = read_manifest(data / "test_clean" / "manifest.json")
    clean_feats, curve = features(clean, mel), []
    model = ConformerCTC()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-3)
    ctc = nn.CTCLoss(zero_infinity=True)
    budget, step, t1, loss_log = args.minutes * 60, 0, time.time(), []
    warmup = 150
    max_steps = args.steps or float("inf")
    while time.time() - t1 < budget and step < max_steps:
        for idx in batches(len(train), args.batch, rng):
            if time.time() - t1 >= budget or step >= max_steps:
                break
            x, lengths = pad(train_feats, idx, mean, std, augment=not args.no_specaug)
            y = [targets[i] for i in idx]
            logp, out_len = model(x, lengths)
            loss = ctc(logp.transpose(0, 1), torch.cat(y), out_len,
                       torch.tensor([len(t) for t in y]))
            for g in opt.param_groups:
                g["lr"] = args.lr * min((step + 1) / warmup, math.sqrt(warmup / (step + 1)))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            step += 1
            if step in args.eval_at:
                t_eval = time.time()
                with tempfile.TemporaryDirectory() as tmp:
                    ref, hyp = Path(tmp) / "ref", Path(tmp) / "hyp"
                    ref.write_text("".join(f"u{i:05d} {e['text']}\n" for i, e in enumerate(clean)))
                    hyp.write_text("".join(f"u{i:05d} {h}".rstrip() + "\n" for i, h in
                                           enumerate(decode(model, clean_feats, mean, std))))
                    r = score(ref, hyp, Path(tmp) / "score")
                curve.append({"step": step, "seconds": round(time.time() - t1, 1),
                              "wer_test_clean": round(r["wer"], 2)})
                print(f"step {step}: test_clean WER {r['wer']:.2f}%", flush=True)
                t1 += time.time() - t_eval  # budgets and timings exclude evaluation
            if step % 100 == 0:
                loss_log.append([step, round(time.time() - t1, 1), round(loss.item(), 4)])
                print(f"step {step} {time.time() - t1:.0f}s loss {loss.item():.3f}", flush=True)
    train_s = time.time() - t1
    result = {"data": str(data), "params": params, "steps": step, "batch": args.batch,
              "train_seconds": round(train_s, 1), "feature_seconds": round(feat_s, 1),
              "s_per_step": round(train_s / max(step, 1), 3),
              "threads": torch.get_num_threads(), "specaug": not args.no_specaug,
              "loss": loss_log, "curve": curve, "wer": {}, "cer": {}}
    with tempfile.TemporaryDirectory() as tmp:
        score_dir = Path(args.out) if args.out else Path(tmp)
        for split in ("test_clean", "test_other"):
            entries = read_manifest(data / split / "manifest.json")
            hyps = decode(model, features(entries, mel), mean, std)
            ids = [Path(e["audio_filepath"]).stem for e in entries]
            for name, keep in conditions(data / split, ids).items():
                ref, hyp = score_dir / name / "ref", score_dir / name / "hyp"
                ref.parent.mkdir(parents=True, exist_ok=True)
                ref.write_text("".join(f"{u} {e['text']}\n" for u, e in zip(ids, entries)
                                       if u in keep))
                hyp.write_text("".join(f"{u} {h}".rstrip() + "\n" for u, h in zip(ids, hyps)
                                       if u in keep))
                r = score(ref, hyp, score_dir / name)
                result["wer"][name], result["cer"][name] = round(r["wer"], 2), round(r["cer"], 2)
    print(f"params {params}, threads {result['threads']}, steps {step}, "
          f"{result['s_per_step']:.3f} s/step, {train_s:.0f} s training")
    print(f"{'test set':18} {'WER %':>7} {'CER %':>7}")
    for name in result["wer"]:
        print(f"{name:18} {result['wer'][name]:7.2f} {result['cer'][name]:7.2f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
