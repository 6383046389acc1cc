"""A NeMo encoder around a local Hugging Face Wav2Vec2 / HuBERT / WavLM checkpoint.

NeMo has no encoder for these self-supervised models, which are the ones the SSPG paper
compresses. With ``HFSSLEncoder`` as ``model.encoder`` and ``WaveformPreprocessor`` as
``model.preprocessor`` (the models read the waveform, not mel features), an
EncDecCTCModel(BPE) fine-tunes one with a CTC head, and the ``wav2vec2`` pruning preset
gates the paper's 6 linears per block. Weights come from ``save_pretrained`` output in
``pretrained_dir``; the .nemo then carries the fine-tuned weights, but restoring it
still reads the architecture from that folder, and needs ``import pinch.nemo``
(these classes are pinch's, not NeMo's).
"""
from pathlib import Path

import torch
from nemo.core.classes import NeuralModule, typecheck
from nemo.core.neural_types import AcousticEncodedRepresentation, AudioSignal, LengthsType, NeuralType


class WaveformPreprocessor(NeuralModule):
    """Passes the waveform through, normalised per utterance as Wav2Vec2FeatureExtractor does."""

    def __init__(self, sample_rate=16000, normalize=True):
        super().__init__()
        self._sample_rate = sample_rate
        self.normalize = normalize

    @property
    def input_types(self):
        return {"input_signal": NeuralType(("B", "T"), AudioSignal(freq=self._sample_rate)),
                "length": NeuralType(("B",), LengthsType())}

    @property
    def output_types(self):
        return {"processed_signal": NeuralType(("B", "T"), AudioSignal(freq=self._sample_rate)),
                "processed_length": NeuralType(("B",), LengthsType())}

    @typecheck()
    def forward(self, input_signal, length):
        if not self.normalize:
            return input_signal, length
        valid = (torch.arange(input_signal.shape[1], device=length.device)[None, :] < length[:, None]).to(input_signal)
        count = valid.sum(dim=1, keepdim=True).clamp_min(1)
        mean = (input_signal * valid).sum(dim=1, keepdim=True) / count
        var = ((input_signal - mean).square() * valid).sum(dim=1, keepdim=True) / count
        return (input_signal - mean) / torch.sqrt(var + 1e-7) * valid, length


class HFSSLEncoder(NeuralModule):
    """``transformers.AutoModel`` from a local folder, as a NeMo encoder: (B, T) audio -> (B, D, T')."""

    def __init__(self, pretrained_dir, freeze_feature_encoder=True):
        super().__init__()
        from transformers import AutoModel

        if not (Path(pretrained_dir) / "config.json").is_file():
            raise FileNotFoundError(f"model.encoder.pretrained_dir={pretrained_dir}: no Hugging Face "
                                    "checkpoint there (expected config.json from save_pretrained)")
        self.model = AutoModel.from_pretrained(pretrained_dir)
        if not hasattr(self.model, "_get_feat_extract_output_lengths"):
            raise ValueError(f"{pretrained_dir}: {type(self.model).__name__} is not a Wav2Vec2/HuBERT/WavLM model")
        if freeze_feature_encoder:
            # As the paper and HF's fine-tuning recipes: the CNN feature encoder stays fixed.
            self.model.freeze_feature_encoder()
        self._feat_out = self.model.config.hidden_size

    @property
    def input_types(self):
        return {"audio_signal": NeuralType(("B", "T"), AudioSignal()),
                "length": NeuralType(("B",), LengthsType())}

    @property
    def output_types(self):
        return {"outputs": NeuralType(("B", "D", "T"), AcousticEncodedRepresentation()),
                "encoded_lengths": NeuralType(("B",), LengthsType())}

    @typecheck()
    def forward(self, audio_signal, length):
        mask = torch.arange(audio_signal.shape[1], device=length.device)[None, :] < length[:, None]
        hidden = self.model(audio_signal, attention_mask=mask.long()).last_hidden_state
        lengths = self.model._get_feat_extract_output_lengths(length).clamp_max(hidden.shape[1])
        return hidden.transpose(1, 2), lengths
