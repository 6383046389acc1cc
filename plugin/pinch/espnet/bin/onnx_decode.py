"""Decode Kaldi-style data dirs with exported espnet2 CTC ONNX files in onnxruntime.

Features come from the model's own espnet2 frontend (its config is in the file's metadata),
the encoder and CTC head run in onnxruntime, and the tokens are picked by the rule the recipe's
PyTorch decoding uses (stage 12, ``conf/decode_ctc.yaml``): espnet2's own beam search, beam 1,
scored by CTC prefix scoring alone (``ctc_weight: 1.0``, no LM, no length penalty), run on the
graph's log-probabilities. Greedy CTC (best label per frame) is not that rule: on the dense
model of ``bench/sweep/embedded`` it changes 6 of the tiny corpus's 16 test transcripts, so
the ONNX forms would be scored against a differently decoded reference. Each ``--decode``
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

import torch

from pinch.data.atomic import write_text_atomic
from pinch.data.kaldi import read_table
from pinch.deploy import pieces_to_text, read_tokens
from pinch.deploy.onnx_files import ctc_session
from pinch.espnet.bin.export_onnx import FRONTEND_KEY, wav_features


class GraphLogProbs:
    """The CTC module CTCPrefixScorer asks for log-probabilities: the graph's outputs are those already."""

    @staticmethod
    def log_softmax(x):
        return x


def ctc_prefix_search(tokens):
    """espnet2's search as Speech2Text builds it for ``beam_size: 1, ctc_weight: 1.0``: a
    BatchBeamSearch whose only scorer is CTC prefix scoring (sos/eos: the last token)."""
    from espnet.nets.batch_beam_search import BatchBeamSearch
    from espnet.nets.scorers.ctc import CTCPrefixScorer

    eos = len(tokens) - 1
    return BatchBeamSearch(scorers={"ctc": CTCPrefixScorer(ctc=GraphLogProbs(), eos=eos)}, weights={"ctc": 1.0},
                           beam_size=1, vocab_size=len(tokens), sos=eos, eos=eos, token_list=tokens).eval()


def search_ids(search, logprobs):
    """Token ids of one utterance's (frames, vocab) log-probabilities, as Speech2Text returns them:
    sos and eos stripped, blanks dropped."""
    with torch.no_grad():
        best = search(x=torch.from_numpy(logprobs), maxlenratio=0.0, minlenratio=0.0)[0]
    return [i for i in best.yseq[1:-1].tolist() if i != 0]


class EspnetOnnxCTC:
    def __init__(self, onnx_path, tokens):
        from espnet2.tasks.asr import frontend_choices

        self.session, front = ctc_session(onnx_path, tokens, FRONTEND_KEY, "pinch.espnet.bin.export_onnx")
        front = json.loads(front)
        self.frontend = (frontend_choices.get_class(front["frontend"])(**front["frontend_conf"]).eval()
                         if front["frontend"] else None)
        self.tokens = tokens
        self.search = ctc_prefix_search(tokens)

    def __call__(self, audio_path):
        logprobs, out_lengths = self.session.run(None, wav_features(self.frontend, audio_path))
        ids = search_ids(self.search, logprobs[0, : int(out_lengths[0])])
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
