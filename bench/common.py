"""Shared set-up of the benchmarks: the recipe's Conformer encoder and timing helpers."""
import json
import os
import statistics
import time

import torch


def conformer_encoder(d_model=144, blocks=6, heads=4, ffn=576, feat=80, seed=0):
    """ESPnet's Conformer encoder at the size of the default recipe (~2.6M params)."""
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

    torch.manual_seed(seed)
    return ConformerEncoder(input_size=feat, output_size=d_model, attention_heads=heads, linear_units=ffn,
                            num_blocks=blocks, input_layer="conv2d", macaron_style=True, use_cnn_module=True,
                            cnn_module_kernel=15, rel_pos_type="latest", pos_enc_layer_type="rel_pos",
                            selfattention_layer_type="rel_selfattn")


def features(batch=8, seconds=3.0, feat=80, seed=0):
    """A batch of log-mel-like features at 100 frames per second."""
    g = torch.Generator().manual_seed(seed)
    frames = int(seconds * 100)
    return torch.randn(batch, frames, feat, generator=g), torch.full((batch,), frames)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_growth_mb(fn, interval=0.002):
    """Peak resident memory above the level before ``fn``, sampled while it runs."""
    import threading

    base, peak, done = rss_mb(), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(interval)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    return max(peak[0], rss_mb()) - base


def median(values):
    return statistics.median(values)


def params_of(model):
    return sum(p.numel() for n, p in model.named_parameters() if not n.endswith("_threshold"))


def write_json(out_dir, name, payload):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{name}.json")
    payload = {"torch": torch.__version__, "threads": torch.get_num_threads(), **payload}
    with open(path + ".tmp", "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(path + ".tmp", path)
    return path


def bar_plot(out_dir, name, labels, values, ylabel, title, width=6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, 3.2))
    ax.bar(labels, values, color="#4477aa")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.3g}", ha="center", va="bottom")
    fig.tight_layout()
    path = os.path.join(out_dir, f"{name}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def wav2vec2_base(seed=0, **config):
    """A Hugging Face Wav2Vec2 encoder at wav2vec2-base size (95M; ``config`` overrides it), random
    weights, built from its configuration (no download). Layer drop is off so every step does the
    same work."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(seed)
    return Wav2Vec2Model(Wav2Vec2Config(layerdrop=0.0, **config))


def waveform(batch=1, seconds=10.0, rate=16000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, int(seconds * rate), generator=g)


def spread(values):
    """``(median, min, max)`` of repeated measurements."""
    return median(values), min(values), max(values)
