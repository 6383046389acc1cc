"""A TTS recipe's results: RESULTS.md, rows of the shared table, sample waveforms and
mel spectrograms of reference, dense and compressed speech side by side.

Why here: both toolkits' TTS recipes score the same way (MCD, log-F0 RMSE, ASR-CER, MAPSSWE
of the compressed model's ASR errors against the dense model's and, where the recipe trained
one, the dense control's: the verdict's reference; and the judges not trained on the corpus,
pocketsphinx's CER with its MAPSSWE tests and DNSMOS, ``pinch.scoring.judges``); each toolkit's adapter only
builds its models (``pinch.espnet.bin.tts_results``, ``pinch.nemo.bin.tts_results``) and
passes their parameters in.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pinch.data.atomic import check_outputs, write_text_atomic
from pinch.data.kaldi import read_table
from pinch.data.reading import read_json

from .results import append_result, significance_of

APPENDED = ".results_appended"
# pinch.scoring.judges' output under each test set (not imported: it loads pocketsphinx and DNSMOS).
JUDGES = Path("judges") / "judges.json"
DNSMOS = ("sig", "bak", "ovrl")


@dataclass
class TTSModel:
    """One synthesized test set: the model dir, its weights and the outputs of the scoring."""
    name: str
    model_dir: Path
    synth_dir: Path    # holds wav.scp, tts_metrics/, <asr_tag>/score_wer and judges/
    counts: dict       # parameter_counts() of the model
    pruning: dict | None = None  # a compressed model's method and target_sparsity; None: dense
    method: str = "dense"        # the table's method of an unpruned model: dense or dense_finetune (the control)


def parameter_counts(named_parameters, encoder_prefix: str | tuple[str, ...]) -> dict:
    """Parameters and non-zeros of the whole model and of its encoder (the parameters under
    ``encoder_prefix``, or under any of several), from the model's ``named_parameters()``
    (buffers such as feature statistics are not parameters)."""
    tensors = dict(named_parameters)
    enc = {k: v for k, v in tensors.items() if k.startswith(encoder_prefix)}
    if not enc:
        raise ValueError(f"no parameter starts with the encoder prefix {encoder_prefix!r}")

    def count(d):
        return sum(v.numel() for v in d.values()), sum(int((v != 0).sum()) for v in d.values())

    (params, nonzero), (enc_params, enc_nonzero) = count(tensors), count(enc)
    return {"params": params, "nonzero_params": nonzero, "encoder_params": enc_params,
            "encoder_nonzero": enc_nonzero, "sparsity_model": 1 - nonzero / params,
            "encoder_sparsity": 1 - enc_nonzero / enc_params}


def asr_judge(scores: Path) -> tuple[dict, dict]:
    """An ASR judge's result.json (cer, wer) under ``scores`` and its MAPSSWE tests, by reference."""
    tests = {compare.parent.name.removeprefix("mapsswe_vs_"): significance_of(_read_json(compare))
             for compare in sorted(scores.glob("mapsswe_vs_*/compare.json"))}
    return _read_json(scores / "score_wer" / "result.json"), tests


def model_scores(model: TTSModel, asr_tag: str, cross_tag: str | None = None) -> dict:
    """``cross_tag``: the scores of the other toolkit's ASR judge, beside the recipe's own."""
    metrics = _read_json(model.synth_dir / "tts_metrics" / "tts_metrics.json")
    cer, tests = asr_judge(model.synth_dir / asr_tag)
    out = {"mcd": metrics["mcd"], "log_f0_rmse": metrics["log_f0_rmse"],
           "utterances": metrics["utterances"], "cer": cer["cer"], "wer": cer["wer"]}
    if tests:
        out["mapsswe"] = tests
    if cross_tag:
        cross, cross_tests = asr_judge(model.synth_dir / cross_tag)
        out |= {"cross_cer": cross["cer"], "cross_mapsswe": cross_tests}
    return out | judge_scores(_read_json(model.synth_dir / JUDGES))


def judge_scores(judges: dict) -> dict:
    """A row's fields from a judges.json: pocketsphinx's CER and MAPSSWE tests, DNSMOS means."""
    ps = judges["pocketsphinx"]
    return {"pocketsphinx_cer": ps["cer"], "pocketsphinx_mapsswe": ps["mapsswe"],
            **{f"dnsmos_{k}": judges["dnsmos"][k] for k in DNSMOS}}


# The verdict's reference: the dense control (as much training as the compressed model) where
# there is one, else the dense model; each with its name in RESULTS.md.
REFERENCES = (("dense_finetune", "dense control"), ("dense", "dense model"))


def reference_of(tests: dict) -> str:
    return next(ref for ref, _ in REFERENCES if ref in tests)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"{path} is missing: run the scoring stage first")
    return read_json(path)


def _verdict(test: dict) -> str:
    return f"{test['p_value']:.3g} ({'no significant increase' if test['lossless'] else 'worse'})"


def _judge_cells(r: dict) -> str:
    tests = r.get("pocketsphinx_mapsswe", {})
    ref = next((ref for ref, _ in REFERENCES if ref in tests), None)
    return (f"{r['pocketsphinx_cer']:.2f}|" + (f"{_verdict(tests[ref])} vs {dict(REFERENCES)[ref]}" if ref else "")
            + "|" + "|".join(f"{r[f'dnsmos_{k}']:.3f}" for k in DNSMOS) + "|")


def results_md(rows: list[dict], reference: dict, test_set: str) -> str:
    """`reference`: the recordings' ASR-CER result.json and judge_scores, their row of the table."""
    lines = ["<!-- Generated by pinch.scoring tts-results -->", "# RESULTS (TTS)", "",
             f"Test set `{test_set}`. ASR-CER: the ASR model's CER on the synthesized speech; "
             f"on the recordings themselves it is {reference['cer']:.2f}%. MAPSSWE: the compressed "
             "model's ASR errors against the reference model's, on the same sentences (the dense "
             "control: the dense model fine-tuned as long as the compression pass, without pruning).", "",
             "Judges that did not train on the corpus (`pinch.scoring.judges`): pocketsphinx's en-us model "
             "(trained on human speech) with the corpus's words, its CER and its MAPSSWE test against the "
             "verdict's reference; DNSMOS P.835 (trained on human ratings), 1 to 5: SIG the speech, BAK the "
             "background, OVRL overall, means over the sentences.", "",
             "|model|encoder params|encoder sparsity|params|model sparsity|MCD dB|log-F0 RMSE|ASR-CER %|ASR-WER %|"
             + "|".join(f"MAPSSWE p vs {name}" for _, name in REFERENCES)
             + "|pocketsphinx CER %|pocketsphinx MAPSSWE p|DNSMOS SIG|DNSMOS BAK|DNSMOS OVRL|",
             "|---|---|---|---|---|---|---|---|---|" + "---|" * (len(REFERENCES) + 5),
             f"|the recordings|||||||{reference['cer']:.2f}|{reference['wer']:.2f}|" + "|" * len(REFERENCES)
             + _judge_cells(reference)]
    for r in rows:
        tests = r.get("mapsswe", {})
        ps = [_verdict(tests[ref]) if ref in tests else "" for ref, _ in REFERENCES]
        f0 = "n/a" if r["log_f0_rmse"] is None else f"{r['log_f0_rmse']:.4f}"
        lines.append(f"|{r['name']}|{r['encoder_params']:,}|{r['encoder_sparsity']:.4f}|{r['params']:,}|"
                     f"{r['sparsity_model']:.4f}|{r['mcd']:.3f}|{f0}|{r['cer']:.2f}|{r['wer']:.2f}|" + "|".join(ps)
                     + "|" + _judge_cells(r))
    if "cross_cer" in reference:
        lines += ["", f"The other toolkit's ASR model (`{reference['cross_tag']}`) as a second judge: its CER on the "
                  f"synthesized speech (on the recordings {reference['cross_cer']:.2f}%) and its MAPSSWE tests.", "",
                  "|model|cross ASR-CER %|" + "|".join(f"MAPSSWE p vs {name}" for _, name in REFERENCES) + "|",
                  "|---|---|" + "---|" * len(REFERENCES)]
        for r in rows:
            tests = r["cross_mapsswe"]
            lines.append(f"|{r['name']}|{r['cross_cer']:.2f}|"
                         + "|".join(_verdict(tests[ref]) if ref in tests else "" for ref, _ in REFERENCES) + "|")
    return "\n".join(lines) + "\n"


def preset_name(preset) -> str:
    """The layers a pass gated as one string, however the config wrote them: auto, or the
    presets' names (``[tacotron2, tacotron2_decoder]`` as a list or as YAML text)."""
    if preset is None:
        return "auto"
    if isinstance(preset, str):
        preset = preset.strip().strip("[]").split(",")
    names = [str(p).strip() for p in preset if str(p).strip()]
    return names[0] if len(names) == 1 else f"[{', '.join(names)}]"


def log_mel(path: str, n_mels: int = 80) -> tuple[np.ndarray, int]:
    import librosa

    audio, sr = sf.read(path, dtype="float32")
    mel = librosa.feature.melspectrogram(y=audio, sr=sr, n_fft=1024, hop_length=256, n_mels=n_mels)
    return librosa.power_to_db(mel, ref=np.max), sr


def write_samples(models: list[TTSModel], ref_scp: Path, n: int, out: Path) -> list[str]:
    """Copy the first `n` test sentences of the reference and every model to OUT/<utt>/ and
    plot their mel spectrograms one above the other (OUT/<utt>/mel.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    refs = read_table(ref_scp)
    synth = [(m.name, read_table(m.synth_dir / "wav.scp")) for m in models]
    common = sorted(set(refs).intersection(*(set(s) for _, s in synth)))[:n]
    for utt in common:
        d = Path(out) / utt
        d.mkdir(parents=True, exist_ok=True)
        sources = [("reference", refs[utt])] + [(name, s[utt]) for name, s in synth]
        fig, axes = plt.subplots(len(sources), 1, figsize=(8, 2.2 * len(sources)), squeeze=False)
        for ax, (name, wav) in zip(axes[:, 0], sources):
            shutil.copyfile(wav, d / f"{name}.wav")
            mel, sr = log_mel(wav)
            ax.imshow(mel, origin="lower", aspect="auto", extent=(0, mel.shape[1] * 256 / sr, 0, mel.shape[0]))
            ax.set_title(name, fontsize=9)
            ax.set_ylabel("mel bin")
        axes[-1, 0].set_xlabel("time (s)")
        fig.tight_layout()
        fig.savefig(d / "mel.png", dpi=100)
        plt.close(fig)
    return common


def tts_results(models: list[TTSModel], asr_tag: str, reference_cer: Path, reference_judges: Path,
                ref_scp: Path, test_set: str, results_md_path: Path, samples_dir: Path,
                n_samples: int, toolkit: str, results_table: Path | None = None,
                overwrite: bool = False, notes: str = "", cross: tuple[str, Path] | None = None) -> list[dict]:
    """Score rows of every model; RESULTS.md, samples and (once per model dir) table rows.
    ``cross``: (tag, result.json on the recordings) of the other toolkit's ASR judge."""
    check_outputs({"--results_md": results_md_path},
                  {"--reference_cer": reference_cer, "--reference_judges": reference_judges, "--ref_scp": ref_scp})
    cross_tag = cross[0] if cross else None
    rows = []
    for m in models:
        row = {"name": m.name, **m.counts, **model_scores(m, asr_tag, cross_tag)}
        if m.pruning:
            row["pruning"] = m.pruning
        rows.append(row)
    reference = _read_json(reference_cer) | judge_scores(_read_json(reference_judges))
    if cross:
        reference |= {"cross_tag": cross_tag, "cross_cer": _read_json(cross[1])["cer"]}
    write_text_atomic(results_md_path, results_md(rows, reference, test_set))
    recordings = (f"ASR-CER of the recordings {reference['cer']:.2f}; pocketsphinx CER of the recordings "
                  f"{reference['pocketsphinx_cer']:.2f}; DNSMOS of the recordings "
                  + " ".join(f"{k.upper()} {reference[f'dnsmos_{k}']:.3f}" for k in DNSMOS)
                  + (f"; cross ASR judge {cross_tag}: CER of the recordings {reference['cross_cer']:.2f}" if cross else ""))
    write_samples(models, ref_scp, n_samples, samples_dir)
    if results_table is not None:
        for m, r in zip(models, rows):
            marker = m.model_dir / APPENDED
            if marker.exists() and not overwrite:
                continue
            table_row = {
                "system": str(m.model_dir), "toolkit": toolkit, "task": "tts",
                "method": r["pruning"]["method"] if "pruning" in r else m.method,
                "params": r["params"], "nonzero_params": r["nonzero_params"],
                "model_sparsity": round(r["sparsity_model"], 4),
                "encoder_params": r["encoder_params"], "encoder_sparsity": round(r["encoder_sparsity"], 4),
                "mcd": round(r["mcd"], 3), "log_f0_rmse": r["log_f0_rmse"], "cer": {test_set: r["cer"]},
                "pocketsphinx_cer": r["pocketsphinx_cer"], **{f"dnsmos_{k}": round(r[f"dnsmos_{k}"], 3) for k in DNSMOS},
                **({"cross_cer": {test_set: r["cross_cer"]}} if cross else {}),
                "notes": "; ".join(x for x in (notes, recordings) if x),
            }
            if "pruning" in r:
                ref = reference_of(r["mapsswe"])
                table_row.update(target_sparsity=r["pruning"]["target_sparsity"], reference=ref,
                                 preset=preset_name(r["pruning"].get("preset")),
                                 gated_params=r["pruning"].get("gated_params"),
                                 significance={test_set: r["mapsswe"][ref]},
                                 mapsswe={name: {test_set: t} for name, t in r["mapsswe"].items()},
                                 pocketsphinx_mapsswe={name: {test_set: t}
                                                       for name, t in r["pocketsphinx_mapsswe"].items()})
                if cross:
                    table_row["cross_mapsswe"] = {name: {test_set: t} for name, t in r["cross_mapsswe"].items()}
            append_result(results_table, table_row)
            marker.write_text(f"{results_table}\n")
    return rows


def add_arguments(parser) -> None:
    """The options of each toolkit's ``tts_results`` command."""
    parser.add_argument("--models", nargs="+", required=True,
                        help="DIR:WEIGHTS per model, the dense one first; DIR/<synth_tag>/<test_set> holds its scores")
    parser.add_argument("--control", help="DIR:WEIGHTS of the dense control (the dense model fine-tuned as long "
                        "as the compression pass, without pruning)")
    parser.add_argument("--synth_tag", required=True)
    parser.add_argument("--test_set", required=True)
    parser.add_argument("--asr_tag", required=True, help="folder of the ASR-CER scores under each test set")
    parser.add_argument("--reference_cer", required=True, help="result.json of the ASR model on the recordings")
    parser.add_argument("--reference_judges", required=True,
                        help="judges.json of the recordings (python -m pinch.scoring judge)")
    parser.add_argument("--ref_scp", required=True, help="wav.scp of the recordings")
    parser.add_argument("--cross_asr_tag", help="folder of the other toolkit's ASR judge's scores under each test set")
    parser.add_argument("--cross_reference_cer", help="result.json of that judge on the recordings")
    parser.add_argument("--n_samples", type=int, default=3)
    parser.add_argument("--samples_dir", required=True)
    parser.add_argument("--results_md", required=True)
    parser.add_argument("--results_table", help="shared results table to append to (once per model dir)")
    parser.add_argument("--overwrite", choices=["true", "false"], default="false")
    parser.add_argument("--notes", default="")


def run(args, load, encoder_prefix: str | tuple[str, ...], toolkit: str) -> list[dict]:
    """``load(model_dir, weights)`` builds a model the toolkit's way: its ``named_parameters()``
    and, for a compressed model, the pruning its bake report names (method, target_sparsity)."""
    models = []
    specs = [(spec, "dense") for spec in args.models]
    if args.control:
        specs.insert(1, (args.control, "dense_finetune"))
    for spec, method in specs:
        directory, sep, weights = spec.partition(":")
        if not sep:
            raise ValueError(f"--models / --control: {spec!r} is not DIR:WEIGHTS")
        d = Path(directory)
        params, pruning = load(d, Path(weights))
        models.append(TTSModel(d.parent.name if d.name == "baked" else d.name, d,
                               d / args.synth_tag / args.test_set, parameter_counts(params, encoder_prefix), pruning,
                               method))
    rows = tts_results(models, args.asr_tag, Path(args.reference_cer), Path(args.reference_judges),
                       Path(args.ref_scp), args.test_set,
                       Path(args.results_md), Path(args.samples_dir), args.n_samples, toolkit,
                       args.results_table, args.overwrite == "true", args.notes,
                       (args.cross_asr_tag, Path(args.cross_reference_cer)) if args.cross_asr_tag else None)
    print(Path(args.results_md).read_text(), end="")
    print(f"samples and mel spectrograms of up to {args.n_samples} sentences in {args.samples_dir}")
    return rows
