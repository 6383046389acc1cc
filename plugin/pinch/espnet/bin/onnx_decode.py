"""Decode Kaldi-style data dirs with exported espnet2 CTC ONNX files in onnxruntime.

Features come from the model's own espnet2 frontend (its config is in the file's metadata),
the encoder and CTC head run in onnxruntime, greedy CTC picks the tokens. Each ``--decode``
writes a ``text`` file (``utt words``, sorted) as espnet2's decoding does; one process serves
them all (espnet2's import is paid once).

    python -m pinch.espnet.bin.onnx_decode --tokens exp/sspg/baked/onnx/tokens.txt \
        --decode exp/sspg/baked/onnx/model.int8.onnx dump/raw/test_clean/wav.scp \
                 exp/sspg/baked/onnx/int8_onnxruntime/decode_test_clean/text
"""
import argparse
import json
import sys
from pathlib import Path

from pinch.data.atomic import write_text_atomic
from pinch.data.kaldi import read_table
from pinch.deploy import greedy_ctc, pieces_to_text, read_tokens
from pinch.deploy.onnx_files import ctc_session
from pinch.espnet.bin.export_onnx import FRONTEND_KEY, wav_features


class EspnetOnnxCTC:
    def __init__(self, onnx_path, tokens):
        from espnet2.tasks.asr import frontend_choices

        self.session, front = ctc_session(onnx_path, tokens, FRONTEND_KEY, "pinch.espnet.bin.export_onnx")
        front = json.loads(front)
        self.frontend = (frontend_choices.get_class(front["frontend"])(**front["frontend_conf"]).eval()
                         if front["frontend"] else None)
        self.tokens = tokens

    def __call__(self, audio_path):
        logprobs, out_lengths = self.session.run(None, wav_features(self.frontend, audio_path))
        ids = greedy_ctc(logprobs[0], out_lengths[0], blank=0)
        return pieces_to_text(self.tokens[i] for i in ids)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.espnet.bin.onnx_decode", description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--decode", nargs=3, action="append", required=True, metavar=("ONNX", "WAV_SCP", "OUT"),
                        help="model.onnx, model.int8.onnx or model.int8_static.onnx, a wav.scp, and the text file to write")
    args = parser.parse_args(argv)
    try:
        for path in [args.tokens] + [p for job in args.decode for p in job[:2]]:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: no such file")
        tokens, decoders = read_tokens(args.tokens), {}
        jobs = [(onnx, read_table(scp), Path(out)) for onnx, scp, out in args.decode]
        for onnx, wavs, out in jobs:
            if onnx not in decoders:
                decoders[onnx] = EspnetOnnxCTC(onnx, tokens)
            out.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out, "".join(f"{utt} {decoders[onnx](wav)}".rstrip() + "\n"
                                           for utt, wav in sorted(wavs.items())))
            print(f"pinch.espnet: {len(wavs)} utterances (onnxruntime) -> {out}")
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.espnet.bin.onnx_decode: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
