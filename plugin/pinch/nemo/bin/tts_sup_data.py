"""FastPitch's supplementary data computed before training: the pitch cache and its statistics.

NeMo's ``TTSDataset`` computes each utterance's pitch with ``librosa.pyin`` the first time
it loads it and caches it as ``<sup_data_path>/pitch/<id>.pt``; on a CPU that is about a
second per second of audio, the whole first epoch and more. Here the cache is filled
beforehand with WORLD's dio + stonemask (pyworld), which is a hundred times faster, in
exactly the layout ``TTSDataset`` looks for:

* file name: the audio path relative to the manifest's common folder (NeMo's
  ``get_base_dir``, which the dataset takes after its duration filter: the same folder
  unless the filter empties a whole subfolder), without its suffix, ``/`` replaced by ``_``;
  a float32 tensor saved with ``torch.save``;
* frames: pyin (``frame_length=win_length``, its default hop of ``win_length // 4``,
  centred frames) gives ``len(audio) // hop + 1``, the mel spectrogram's count; dio with a
  frame period of ``hop / sample_rate`` seconds gives ``int(len(audio) / hop) + 1`` frames at
  the same times (frame ``i`` at ``i * hop``), so the counts match. This needs
  ``hop == win_length // 4``, which the FastPitch configs have (1024 / 256);
* unvoiced frames are 0 Hz, as pyin's ``fill_na=0.0``, which the dataset keeps at 0 when it
  normalises.

The train set's voiced frames give ``pitch_mean`` / ``pitch_std``, written where the
datasets' ``pitch_stats_path`` reads them (``{"default": {...}}``). Finally a ``TTSDataset``
built from the config loads an utterance of each manifest with ``librosa.pyin`` disabled:
the cache is read, not recomputed, and its length is the mel spectrogram's.

The parameters come from the training config, composed by Hydra with the same overrides
as training (``--config-path``/``--config-name`` and ``key=value``):

    python -m pinch.nemo.bin.tts_sup_data --config-path conf/nemo/tts --config-name fastpitch \\
        model.train_ds.dataset.manifest_filepath=... model.validation_ds.dataset.manifest_filepath=... \\
        model.sup_data_path=... model.pitch_stats_path=...
"""
import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from pinch.data.atomic import atomic_file, write_json_atomic
from pinch.data.manifest import read_manifest

PITCH_DIR = "pitch"  # nemo.collections.tts.torch.tts_data_types.Pitch.name


def base_dir(paths):
    """NeMo's ``get_base_dir`` (the folder every audio path is relative to)."""
    from nemo.collections.tts.parts.utils.tts_dataset_utils import get_base_dir

    return get_base_dir(paths)


def cache_names(audio_paths):
    """``TTSDataset``'s ``rel_audio_path_as_text_id`` of each path."""
    base = base_dir(audio_paths)
    return [str(Path(p).relative_to(base).with_suffix("")).replace("/", "_") for p in audio_paths]


def world_pitch(audio, sample_rate, hop_length, fmin, fmax):
    """f0 in Hz per frame (0: unvoiced), ``int(len(audio) / hop_length) + 1`` frames."""
    import pyworld

    x = np.ascontiguousarray(audio, dtype=np.float64)
    period_ms = 1000.0 * hop_length / sample_rate
    f0, t = pyworld.dio(x, sample_rate, f0_floor=fmin, f0_ceil=fmax, frame_period=period_ms)
    f0 = pyworld.stonemask(x, f0, t, sample_rate)
    return f0.astype(np.float32)


def frame_count(n_samples, hop_length):
    """Frames of the mel spectrogram (centred STFT) and of pyin for ``n_samples``."""
    return n_samples // hop_length + 1


def _read_audio(path, sample_rate):
    import soundfile as sf

    audio, sr = sf.read(path, dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if sr != sample_rate:
        raise ValueError(f"{path}: {sr} Hz, the config's sample_rate is {sample_rate} Hz")
    return audio


def _cached_pitch(path):
    """A pitch file already in the cache, read as data: the folder may be shared, and torch < 2.6
    unpickles anything by default."""
    import torch

    from pinch.export.checkpoint import read_torch

    f0 = read_torch(path, path)
    if not isinstance(f0, torch.Tensor) or f0.dim() != 1:
        raise ValueError(f"{path}: holds no tensor of pitch frames")
    return f0.float().numpy()


def fill_pitch_cache(manifest, sup_data_path, sample_rate, hop_length, fmin, fmax, overwrite=False):
    """Write the missing pitch files of ``manifest``; returns the voiced f0 values (Hz) of all of it."""
    import torch

    entries = read_manifest(manifest)
    if not entries:
        raise ValueError(f"{manifest}: no utterances")
    paths = [e["audio_filepath"] for e in entries]
    folder = Path(sup_data_path) / PITCH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    voiced = []
    for path, name in zip(paths, cache_names(paths)):
        out = folder / f"{name}.pt"
        audio = None
        if out.is_file() and not overwrite:
            f0 = _cached_pitch(out)
        else:
            audio = _read_audio(path, sample_rate)
            f0 = world_pitch(audio, sample_rate, hop_length, fmin, fmax)
            with atomic_file(out) as tmp:
                torch.save(torch.from_numpy(f0).float(), tmp)
        if audio is not None and len(f0) != frame_count(len(audio), hop_length):
            raise AssertionError(f"{path}: {len(f0)} pitch frames, the mel spectrogram has "
                                 f"{frame_count(len(audio), hop_length)}")
        voiced.append(f0[f0 > 0])
    return np.concatenate(voiced), len(paths)


def check_dataset_reads_cache(dataset_cfg, tokenizer_cfg):
    """Build the config's ``TTSDataset`` and load its first utterance with ``librosa.pyin``
    disabled: proof that the cache is found under the names NeMo uses (a miss would call pyin)
    and that its length is the mel spectrogram's. Returns (pitch frames, mel frames)."""
    from hydra.utils import instantiate
    from nemo.collections.tts.data import dataset as tts_dataset

    def no_pyin(*args, **kwargs):
        raise AssertionError("TTSDataset ran librosa.pyin: the pitch cache was not found under its names")

    tokenizer = instantiate(tokenizer_cfg)
    saved = tts_dataset.librosa.pyin
    tts_dataset.librosa.pyin = no_pyin
    try:
        ds = instantiate(dataset_cfg, text_tokenizer=tokenizer)
        item = ds[0]
    finally:
        tts_dataset.librosa.pyin = saved
    audio, pitch = item[0], item[8]  # TTSDataset.__getitem__'s tuple: (audio, ..., pitch at 8, ...)
    mel_frames = ds.get_log_mel(audio.unsqueeze(0)).shape[-1]
    if len(pitch) != mel_frames:
        raise AssertionError(f"{dataset_cfg.manifest_filepath}: cached pitch has {len(pitch)} frames, "
                             f"the mel spectrogram {mel_frames}")
    return len(pitch), mel_frames


def compose(config_path, config_name, overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(Path(config_path).absolute()), version_base=None):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def sup_data(cfg, overwrite=False, verify=True, log=print):
    """Fill the pitch cache of the train and validation manifests, write the train statistics."""
    m = cfg.model
    train, valid = m.train_ds.dataset, m.validation_ds.dataset
    if "pitch" not in list(train.sup_data_types):
        raise ValueError("model.train_ds.dataset.sup_data_types has no 'pitch': nothing to compute")
    sr, hop, win = int(train.sample_rate), int(train.hop_length), int(train.win_length or train.n_fft)
    if hop != win // 4:
        raise ValueError(f"hop_length {hop} is not win_length // 4 = {win // 4}: NeMo's pyin pitch would have "
                         "another frame rate than the mel spectrogram, and this cache could not match it")
    if train.get("trim"):
        raise ValueError("model.train_ds.dataset.trim is true: the dataset would trim the audio before its "
                         "pitch; the cache is computed on untrimmed audio (set trim: false)")
    fmin, fmax = float(train.pitch_fmin), float(train.pitch_fmax)
    sup = Path(m.sup_data_path)
    # One sup_data_path serves both datasets (as in NeMo's examples): a name in both would be one file.
    names = [set(cache_names([e["audio_filepath"] for e in read_manifest(d.manifest_filepath)])) for d in (train, valid)]
    if names[0] & names[1]:
        raise ValueError(f"{train.manifest_filepath} and {valid.manifest_filepath} have audio files of the same "
                         f"cache name ({sorted(names[0] & names[1])[0]}): they cannot share {sup}")
    t0 = time.time()
    voiced, n_train = fill_pitch_cache(train.manifest_filepath, sup, sr, hop, fmin, fmax, overwrite)
    _, n_valid = fill_pitch_cache(valid.manifest_filepath, sup, sr, hop, fmin, fmax, overwrite)
    if voiced.size == 0:
        raise ValueError(f"{train.manifest_filepath}: no voiced frame in the train set (pitch range {fmin}-{fmax} Hz)")
    mean, std = float(voiced.mean()), float(voiced.std())
    if not (math.isfinite(std) and std > 0):
        raise ValueError(f"pitch std {std} of the train set's voiced frames is not usable")
    log(f"pinch.nemo: pitch (WORLD dio + stonemask, {fmin:.1f}-{fmax:.1f} Hz, hop {hop}) of {n_train} train and "
        f"{n_valid} validation utterances in {sup / PITCH_DIR} ({time.time() - t0:.1f}s); train voiced frames: "
        f"{voiced.size}, mean {mean:.2f} Hz, std {std:.2f} Hz")
    stats = Path(m.pitch_stats_path)
    write_json_atomic(sup / "sup_data.json", {
        "pitch": "pyworld dio + stonemask", "sample_rate": sr, "hop_length": hop, "win_length": win,
        "pitch_fmin": fmin, "pitch_fmax": fmax, "train_manifest": str(train.manifest_filepath),
        "validation_manifest": str(valid.manifest_filepath), "train_voiced_frames": int(voiced.size),
        "pitch_mean": mean, "pitch_std": std})
    stats.parent.mkdir(parents=True, exist_ok=True)
    # The datasets read the statistics when they are built: written first, removed if the check fails.
    write_json_atomic(stats, {"default": {"pitch_mean": mean, "pitch_std": std}})
    if verify:
        try:
            for name, ds in (("train", train), ("validation", valid)):
                frames, _ = check_dataset_reads_cache(ds, m.text_tokenizer)
                log(f"pinch.nemo: TTSDataset ({name}) read the cached pitch ({frames} frames, the mel "
                    "spectrogram's), librosa.pyin not run")
        except BaseException:
            stats.unlink(missing_ok=True)
            raise
    log(f"pinch.nemo: pitch statistics -> {stats}")
    return mean, std


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.nemo.bin.tts_sup_data", description=__doc__.split("\n")[0])
    parser.add_argument("--config-path", required=True, help="folder of the training config")
    parser.add_argument("--config-name", required=True, help="training config name (without .yaml)")
    parser.add_argument("--overwrite", action="store_true", help="recompute cached pitch files too")
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip loading an utterance through TTSDataset")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as given to training")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        sup_data(compose(args.config_path, args.config_name, args.overrides), args.overwrite, args.verify)
    except (ValueError, FileNotFoundError, AssertionError) as err:
        print(f"pinch.nemo.bin.tts_sup_data: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
