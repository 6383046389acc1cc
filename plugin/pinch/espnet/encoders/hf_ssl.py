"""A Hugging Face Wav2Vec2 / HuBERT / WavLM model from a local directory as an espnet2 encoder.

espnet2's ``huggingface`` frontend runs the feature extractor on numpy arrays and reports
lengths in samples (or the batch shape), which CTC cannot use; the s3prl and fairseq
encoders need packages this project does not install. This wraps the transformers model
itself: raw waveform in, frames out, with frame lengths from the model's own convolution
arithmetic. Module names keep the model's (``encoder.model.encoder.layers.N...``), so the
``wav2vec2`` preset gates the paper's 6 linears per block.
"""
import torch
from espnet2.asr.encoder.abs_encoder import AbsEncoder


class HuggingFaceSSLEncoder(AbsEncoder):
    def __init__(
        self,
        input_size: int,
        model_dir: str,
        freeze_feature_encoder: bool = True,
        normalize_waveform: bool = True,
        load_pretrained: bool = True,
    ):
        from transformers import AutoConfig, AutoModel

        super().__init__()
        if input_size != 1:
            raise ValueError(f"hf_ssl reads raw waveforms: set input_size: 1 (got {input_size})")
        config = AutoConfig.from_pretrained(model_dir)
        if not hasattr(config, "conv_kernel"):
            raise ValueError(f"{model_dir}: {config.model_type} is not a Wav2Vec2-style speech model")
        # Wrapped fine-tuned checkpoints (Wav2Vec2ForCTC) load their base model; ESPnet's
        # CTC layer replaces the Hugging Face head.
        self.model = AutoModel.from_pretrained(model_dir) if load_pretrained else AutoModel.from_config(config)
        if freeze_feature_encoder:  # the CNN, as the paper and HF fine-tuning recipes do
            for p in self.model.feature_extractor.parameters():
                p.requires_grad = False
        self.normalize_waveform = normalize_waveform
        # Group-norm feature encoders (base models) are trained on zero padding, without a mask.
        self.use_attention_mask = config.feat_extract_norm == "layer"

    def output_size(self) -> int:
        return self.model.config.hidden_size

    def forward(self, xs_pad, ilens, prev_states=None):
        if xs_pad.dim() == 3:
            xs_pad = xs_pad.squeeze(-1)
        valid = torch.arange(xs_pad.shape[1], device=xs_pad.device)[None, :] < ilens[:, None]
        if self.normalize_waveform:
            # Per utterance, over its own samples: what the models' feature extractors do.
            n = ilens.clamp_min(1)[:, None].to(xs_pad.dtype)
            mean = (xs_pad * valid).sum(1, keepdim=True) / n
            var = (((xs_pad - mean) * valid) ** 2).sum(1, keepdim=True) / n
            xs_pad = (xs_pad - mean) / torch.sqrt(var + 1e-7) * valid
        mask = valid.long() if self.use_attention_mask else None
        hidden = self.model(xs_pad, attention_mask=mask).last_hidden_state
        olens = self.model._get_feat_extract_output_lengths(ilens).to(ilens.dtype)
        return hidden, olens.clamp_max(hidden.shape[1]), None
