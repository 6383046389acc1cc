"""Transcribe data directories with exported NeMo CTC ONNX files, in onnxruntime or sherpa-onnx.

onnxruntime: the features come from NeMo's preprocessor, built from the config the export
stored in the file, and the log-probabilities are decoded greedily. sherpa-onnx: its offline
recognizer for NeMo CTC models computes its own features from the file's metadata, as a
deployment does. Either writes Kaldi-style hypothesis files like ``pinch.nemo.bin.transcribe``.
One process serves every ``--decode`` (NeMo's import is paid once); each file and runtime is
loaded once.

    python -m pinch.nemo.bin.onnx_transcribe --tokens exp/sspg/onnx/tokens.txt \
        --decode exp/sspg/onnx/model.int8.onnx sherpa-onnx data/test_clean exp/sspg/onnx/int8_sherpa-onnx/decode_test_clean/hyp.txt
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from pinch.deploy import greedy_ctc, pieces_to_text, read_tokens
from pinch.deploy.onnx_files import ctc_session, onnx_session
from pinch.nemo.bin.export_onnx import PREPROCESSOR_KEY, audio_features
from pinch.nemo.bin.transcribe import utterances, write_hyp_file

RUNTIMES = ("onnxruntime", "sherpa-onnx")


class OnnxRuntimeCTC:
    """NeMo's features, the ONNX graph in onnxruntime, greedy CTC."""

    def __init__(self, onnx_path, tokens):
        from nemo.collections.asr.modules import AudioToMelSpectrogramPreprocessor

        self.session, config = ctc_session(onnx_path, tokens, PREPROCESSOR_KEY, "pinch.nemo.bin.export_onnx")
        config = {k: v for k, v in json.loads(config).items() if k != "_target_"}
        self.preprocessor = AudioToMelSpectrogramPreprocessor(**config).eval()
        self.tokens = tokens

    def __call__(self, audio_path):
        feeds = audio_features(self.preprocessor, audio_path)
        logprobs, = self.session.run(None, feeds)
        frames = logprobs.shape[1]  # the graph's own output length (no length output)
        ids = greedy_ctc(logprobs[0], frames, blank=len(self.tokens) - 1)
        return pieces_to_text(self.tokens[i] for i in ids)


class SherpaOnnxCTC:
    """sherpa-onnx's offline recognizer for NeMo CTC models (its own feature extraction), fed
    so that it frames the audio as NeMo does.

    Unpadded, sherpa-onnx 2.0.1 decoded the v4 recipe's model 4.3 points worse than
    onnxruntime on NeMo's features (14.81 vs 10.49 on test_clean). Two causes, measured:
    it decodes ``floor(T / subsampling)`` of the ``ceil(T / subsampling)`` frames the graph
    outputs, dropping the last 40 ms and often the last token (about 3.2 points); and its
    frames (kaldi-native-fbank, ``snip_edges`` off) sit half a hop later than NeMo's centred
    STFT frames, with reflected instead of zero-padded edges (about 0.6). With ``snip_edges``
    on and zeros of half a window on each side, its frames are NeMo's; a tail of zeros up to
    whole encoder frames makes the floor equal the ceiling. No metadata key selects either.
    """

    def __init__(self, onnx_path, tokens_path):
        import sherpa_onnx
        from sherpa_onnx.lib._sherpa_onnx import OfflineRecognizer

        self.recognizer = sherpa_onnx.OfflineRecognizer.from_nemo_ctc(
            model=str(onnx_path), tokens=str(tokens_path), num_threads=1, decoding_method="greedy_search")
        config = self.recognizer.config
        config.feat_config.snip_edges = True
        self.recognizer.recognizer = OfflineRecognizer(config)
        meta = onnx_session(onnx_path).get_modelmeta().custom_metadata_map
        preprocessor = json.loads(meta[PREPROCESSOR_KEY])
        self.rate = int(preprocessor["sample_rate"])
        self.hop = int(round(preprocessor["window_stride"] * self.rate))
        self.half_window = int(round(preprocessor["window_size"] * self.rate)) // 2
        self.subsampling = int(meta["subsampling_factor"])

    def __call__(self, audio_path):
        audio, rate = sf.read(audio_path, dtype="float32")
        if rate != self.rate:
            raise ValueError(f"{audio_path}: {rate} Hz, the model's features are at {self.rate} Hz")
        frames = 1 + len(audio) // self.hop  # NeMo's centred STFT frames
        whole = -(-frames // self.subsampling) * self.subsampling  # up to whole encoder frames
        padded = np.concatenate([np.zeros(self.half_window, np.float32), audio,
                                 np.zeros(self.half_window + self.hop * (whole - frames), np.float32)])
        stream = self.recognizer.create_stream()
        stream.accept_waveform(rate, padded)
        self.recognizer.decode_stream(stream)
        return stream.result.text


def transcribe(tokens_path, jobs):
    """``jobs``: ``(onnx, runtime, data_dir, out)`` each; returns the utterance counts."""
    tokens = read_tokens(tokens_path)
    for onnx, runtime, _, _ in jobs:
        if not Path(onnx).is_file():
            raise FileNotFoundError(f"{onnx}: no such file")
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; one of {', '.join(RUNTIMES)}")
    checked = [(onnx, runtime, utterances(data_dir), out) for onnx, runtime, data_dir, out in jobs]
    decoders, counts = {}, []
    for onnx, runtime, utts, out in checked:
        if (onnx, runtime) not in decoders:
            decoders[onnx, runtime] = (OnnxRuntimeCTC(onnx, tokens) if runtime == "onnxruntime"
                                       else SherpaOnnxCTC(onnx, tokens_path))
        decode = decoders[onnx, runtime]
        counts.append(write_hyp_file(out, utts, [decode(audio) for _, audio in utts]))
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.nemo.bin.onnx_transcribe",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", required=True, help="tokens.txt written beside the ONNX files")
    parser.add_argument("--decode", nargs=4, action="append", required=True,
                        metavar=("ONNX", "RUNTIME", "DATA_DIR", "OUT"),
                        help=f"model.onnx, model.int8.onnx or model.int8_static.onnx, a runtime "
                             f"({', '.join(RUNTIMES)}), a split folder (manifest.json, wav.scp) and the "
                             "hypothesis file to write")
    args = parser.parse_args(argv)
    try:
        if not Path(args.tokens).is_file():
            raise FileNotFoundError(f"{args.tokens}: no such file")
        counts = transcribe(args.tokens, args.decode)
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.nemo.bin.onnx_transcribe: error: {err}", file=sys.stderr)
        return 1
    for n, (_, runtime, _, out) in zip(counts, args.decode):
        print(f"pinch.nemo: {n} utterances ({runtime}) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
