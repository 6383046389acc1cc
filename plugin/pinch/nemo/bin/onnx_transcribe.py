"""Transcribe data directories with exported NeMo ONNX files, in onnxruntime or sherpa-onnx.

A CTC model (``model*.onnx``): onnxruntime computes the features with NeMo's preprocessor,
built from the config the export stored in the file, and decodes the log-probabilities
greedily; sherpa-onnx's offline recognizer for NeMo CTC models computes its own features
from the file's metadata, as a deployment does. A transducer (``encoder*.onnx``, the decoder
and joiner of its form beside it: ``pinch.deploy.table.TRANSDUCER_FORMS``): onnxruntime runs
the three graphs on NeMo's features with sherpa-onnx's greedy search; sherpa-onnx's offline
NeMo transducer recognizer (``model_type="nemo_transducer"``, greedy_search) runs them on its
own features. Either writes Kaldi-style hypothesis files like ``pinch.nemo.bin.transcribe``.
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
from pinch.deploy.table import transducer_files
from pinch.nemo.bin.export_onnx import PREPROCESSOR_KEY, audio_features
from pinch.nemo.bin.transcribe import utterances, write_hyp_file

RUNTIMES = ("onnxruntime", "sherpa-onnx")
# sherpa-onnx 2.0.1's greedy NeMo transducer search: at most this many tokens a frame.
MAX_SYMBOLS, MAX_SYMBOLS_TDT = 10, 5


def nemo_preprocessor(config):
    """NeMo's preprocessor from the config (JSON) the export stored."""
    from nemo.collections.asr.modules import AudioToMelSpectrogramPreprocessor

    config = {k: v for k, v in json.loads(config).items() if k != "_target_"}
    return AudioToMelSpectrogramPreprocessor(**config).eval()


class OnnxRuntimeCTC:
    """NeMo's features, the ONNX graph in onnxruntime, greedy CTC."""

    def __init__(self, onnx_path, tokens):
        self.session, config = ctc_session(onnx_path, tokens, PREPROCESSOR_KEY, "pinch.nemo.bin.export_onnx")
        self.preprocessor = nemo_preprocessor(config)
        self.tokens = tokens

    def __call__(self, audio_path):
        feeds = audio_features(self.preprocessor, audio_path)
        logprobs, = self.session.run(None, feeds)
        frames = logprobs.shape[1]  # the graph's own output length (no length output)
        ids = greedy_ctc(logprobs[0], frames, blank=len(self.tokens) - 1)
        return pieces_to_text(self.tokens[i] for i in ids)


def is_tdt(meta):
    """sherpa-onnx 2.0.1 knows a TDT model by "tdt" in its ``url`` metadata, and by nothing else."""
    return "tdt" in meta.get("url", "")


def transducer_sessions(encoder_path, tokens):
    """onnxruntime sessions of a transducer's encoder, decoder and joiner, and the encoder's
    metadata; refused when the files do not fit ``tokens`` (sherpa-onnx would end the process)."""
    sessions = [onnx_session(path) for path in transducer_files(encoder_path)]
    meta = sessions[0].get_modelmeta().custom_metadata_map
    if PREPROCESSOR_KEY not in meta:
        raise ValueError(f"{encoder_path}: no {PREPROCESSOR_KEY} metadata (not exported by pinch.nemo.bin.export_onnx)")
    outputs = sessions[2].get_outputs()[0].shape[-1]
    joiner_fits = outputs > len(tokens) if is_tdt(meta) else outputs == len(tokens)
    if not (joiner_fits and tokens[-1:] == ["<blk>"] and int(meta.get("vocab_size", -1)) + 1 == len(tokens)):
        raise ValueError(f"{encoder_path}: vocab_size {meta.get('vocab_size')} and a joiner of {outputs} outputs, "
                         f"the token list {len(tokens)} (ending {tokens[-1:]}): they do not belong together")
    return sessions, meta


class OnnxRuntimeTransducer:
    """NeMo's features, the encoder, decoder and joiner in onnxruntime, and sherpa-onnx's greedy
    search (so the two runtimes differ in their features only): at most ``MAX_SYMBOLS`` tokens a
    frame (TDT: ``MAX_SYMBOLS_TDT``); TDT moves on by the index of the best duration output, one
    frame after a blank of duration 0. NeMo's greedy search with max_symbols set to the same
    gives the same tokens."""

    def __init__(self, encoder_path, tokens):
        (self.encoder, self.decoder, self.joiner), meta = transducer_sessions(encoder_path, tokens)
        self.preprocessor = nemo_preprocessor(meta[PREPROCESSOR_KEY])
        self.tokens, self.blank, self.tdt = tokens, len(tokens) - 1, is_tdt(meta)
        self.max_symbols = MAX_SYMBOLS_TDT if self.tdt else MAX_SYMBOLS
        self.zero_states = [np.zeros((int(meta["pred_rnn_layers"]), 1, int(meta["pred_hidden"])), np.float32)] * 2

    def predict(self, token, states):
        """The prediction network's output and states after ``token``."""
        inputs = [np.array([[token]], dtype=np.int32), np.array([1], dtype=np.int32), *states]
        outputs = self.decoder.run(None, dict(zip((i.name for i in self.decoder.get_inputs()), inputs)))
        return outputs[0], outputs[2:]

    def __call__(self, audio_path):
        encoded, length = self.encoder.run(None, audio_features(self.preprocessor, audio_path))
        names = [i.name for i in self.joiner.get_inputs()]
        prediction, states = self.predict(self.blank, self.zero_states)
        ids, frame, emitted = [], 0, 0
        while frame < length[0]:
            logits = self.joiner.run(None, dict(zip(names, [encoded[:, :, frame:frame + 1], prediction])))[0]
            logits = logits.reshape(-1)
            token = int(logits[:len(self.tokens)].argmax())
            skip = int(logits[len(self.tokens):].argmax()) if self.tdt else int(token == self.blank)
            if token != self.blank:
                ids.append(token)
                prediction, states = self.predict(token, states)
                emitted += 1
            if skip == 0 and (token == self.blank or emitted == self.max_symbols):
                skip = 1
            if skip:
                emitted = 0
            frame += skip
        return pieces_to_text(self.tokens[i] for i in ids)


class SherpaOnnx:
    """sherpa-onnx's offline recognizer for a NeMo model (its own feature extraction), fed so
    that it frames the audio as NeMo does.

    Unpadded, sherpa-onnx 2.0.1 decoded the v4 recipe's CTC model 4.3 points worse than
    onnxruntime on NeMo's features (14.81 vs 10.49 on test_clean). Two causes, measured:
    it decodes ``floor(T / subsampling)`` of the ``ceil(T / subsampling)`` frames the CTC graph
    outputs, dropping the last 40 ms and often the last token (about 3.2 points); and its
    frames (kaldi-native-fbank, ``snip_edges`` off) sit half a hop later than NeMo's centred
    STFT frames, with reflected instead of zero-padded edges (about 0.6). With ``snip_edges``
    on and zeros of half a window first, its frames are NeMo's; for CTC, zeros up to whole
    encoder frames make the floor equal the ceiling. The transducer recognizer decodes the
    encoder's own output lengths: it gets exactly the ``len // hop`` frames NeMo 3.0 counts
    (its STFT's last frame is padding), or its normalization and length differ. It also
    keeps kaldi's upper mel edge, 400 Hz below Nyquist, where NeMo's filterbank (and the CTC
    recognizer's) reaches Nyquist: the model's own edge is set. No metadata key selects any of
    these. Left different, and selected by no option: the transducer recognizer's povey
    window (NeMo: Hann) and biased deviation in per-feature normalization.
    """

    def __init__(self, recognizer, meta, transducer):
        from sherpa_onnx.lib._sherpa_onnx import OfflineRecognizer

        preprocessor = json.loads(meta[PREPROCESSOR_KEY])
        config = recognizer.config
        config.feat_config.snip_edges = True
        if transducer:
            config.feat_config.high_freq = float(preprocessor.get("highfreq") or 0)  # 0: Nyquist
        recognizer.recognizer = OfflineRecognizer(config)
        self.recognizer, self.transducer = recognizer, transducer
        self.rate = int(preprocessor["sample_rate"])
        self.hop = int(round(preprocessor["window_stride"] * self.rate))
        self.half_window = int(round(preprocessor["window_size"] * self.rate)) // 2
        self.subsampling = 1 if transducer else int(meta["subsampling_factor"])

    def __call__(self, audio_path):
        audio, rate = sf.read(audio_path, dtype="float32")
        if rate != self.rate:
            raise ValueError(f"{audio_path}: {rate} Hz, the model's features are at {self.rate} Hz")
        # CTC: the STFT's 1 + len // hop frames, with which its figures were measured.
        frames = len(audio) // self.hop + (0 if self.transducer else 1)
        whole = -(-frames // self.subsampling) * self.subsampling  # CTC: up to whole encoder frames
        total = (whole - 1) * self.hop + 2 * self.half_window  # the samples of `whole` snipped frames
        padded = np.concatenate([np.zeros(self.half_window, np.float32), audio, np.zeros(total, np.float32)])
        stream = self.recognizer.create_stream()
        stream.accept_waveform(rate, padded[:total])
        self.recognizer.decode_stream(stream)
        return stream.result.text


def sherpa_ctc(onnx_path, tokens_path):
    import sherpa_onnx

    recognizer = sherpa_onnx.OfflineRecognizer.from_nemo_ctc(
        model=str(onnx_path), tokens=str(tokens_path), num_threads=1, decoding_method="greedy_search")
    return SherpaOnnx(recognizer, onnx_session(onnx_path).get_modelmeta().custom_metadata_map, transducer=False)


def sherpa_transducer(encoder_path, tokens_path, tokens):
    import sherpa_onnx

    _, meta = transducer_sessions(encoder_path, tokens)
    encoder, decoder, joiner = (str(path) for path in transducer_files(encoder_path))
    recognizer = sherpa_onnx.OfflineRecognizer.from_transducer(
        encoder=encoder, decoder=decoder, joiner=joiner, tokens=str(tokens_path), num_threads=1,
        decoding_method="greedy_search", model_type="nemo_transducer")
    return SherpaOnnx(recognizer, meta, transducer=True)


def decoder_for(onnx, runtime, tokens, tokens_path):
    if transducer_files(onnx):
        if runtime == "onnxruntime":
            return OnnxRuntimeTransducer(onnx, tokens)
        return sherpa_transducer(onnx, tokens_path, tokens)
    return OnnxRuntimeCTC(onnx, tokens) if runtime == "onnxruntime" else sherpa_ctc(onnx, tokens_path)


def transcribe(tokens_path, jobs):
    """``jobs``: ``(onnx, runtime, data_dir, out)`` each; returns the utterance counts."""
    tokens = read_tokens(tokens_path)
    for onnx, runtime, _, _ in jobs:
        for path in transducer_files(onnx) or [onnx]:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: no such file")
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; one of {', '.join(RUNTIMES)}")
    checked = [(onnx, runtime, utterances(data_dir), out) for onnx, runtime, data_dir, out in jobs]
    decoders, counts = {}, []
    for onnx, runtime, utts, out in checked:
        if (onnx, runtime) not in decoders:
            decoders[onnx, runtime] = decoder_for(onnx, runtime, tokens, tokens_path)
        decode = decoders[onnx, runtime]
        counts.append(write_hyp_file(out, utts, [decode(audio) for _, audio in utts]))
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.nemo.bin.onnx_transcribe",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", required=True, help="tokens.txt written beside the ONNX files")
    parser.add_argument("--decode", nargs=4, action="append", required=True,
                        metavar=("ONNX", "RUNTIME", "DATA_DIR", "OUT"),
                        help=f"model.onnx, model.int8.onnx or model.int8_static.onnx (a transducer: "
                             f"encoder.onnx, encoder.int8.onnx or encoder.int8_static.onnx), a runtime "
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
