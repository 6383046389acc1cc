"""Named presets for the architectures pinch serves.

Each preset lists regular expressions (``re.fullmatch`` on qualified module names) for
the unstructured gates, and the FFN / attention / convolution blocks that structured
gating prunes by neuron, by head and by channel. Patterns accept any prefix, so a preset matches a bare encoder as
well as the full model that holds it. One preset may cover several toolkits' naming
(``conformer`` matches ESPnet's and NeMo's encoders), which is what lets one pruning
file serve both.
"""
from dataclasses import dataclass, field

_ANY = r"(?:.*\.)?"


@dataclass(frozen=True)
class FFNBlock:
    """An FFN whose hidden units are groups: rows of ``inner``, columns of ``outer``."""

    parent: str
    inner: str
    outer: str


@dataclass(frozen=True)
class AttentionBlock:
    """Multi-head attention laid out as ESPnet/NeMo do (linear_q/k/v/out, ``h``, ``d_k``)."""

    parent: str
    query: str = "linear_q"
    key: str = "linear_k"
    value: str = "linear_v"
    out: str = "linear_out"
    position: str | None = "linear_pos"
    head_params: tuple = ("pos_bias_u", "pos_bias_v")
    heads_attr: str = "h"
    head_dim_attr: str = "d_k"


@dataclass(frozen=True)
class ConvBlock:
    """A Conformer convolution module whose channels are groups: ``pointwise1``'s two GLU
    halves, the depthwise conv and its BatchNorm, ``pointwise2``'s input columns. The gate
    sits on the depthwise kernel (and bias), where each channel's path is one row."""

    parent: str
    norm: str
    pointwise1: str = "pointwise_conv1"
    depthwise: str = "depthwise_conv"
    pointwise2: str = "pointwise_conv2"
    activation: str = "activation"


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    modules: tuple
    ffn: tuple = field(default_factory=tuple)
    attention: tuple = field(default_factory=tuple)
    conv: tuple = field(default_factory=tuple)


_ESPNET_BLOCK = _ANY + r"encoders\.\d+\."
# TTS models name decoder blocks like encoder blocks (decoder.encoders.N): a prefix must end in encoder.
_ENCODER_ONLY = r"(?:(?:.*\.)?encoder\.)?"
_TTS_BLOCK = _ENCODER_ONLY + r"encoders\.\d+\."
_NEMO_BLOCK = _ANY + r"layers\.\d+\."
# A layer of NeMo's FFTransformerEncoder/-Decoder (FastPitch): attention and the conv FFN's two Conv1d.
_FFT_LAYER = r"layers\.\d+\.(?:dec_attn\.(?:qkv_net|o_net)|pos_ff\.CoreNet\.[02])"
_ESPNET_ATT = r"self_attn\.linear_(?:q|k|v|out)"
_ESPNET_FFN = r"feed_forward(?:_macaron)?\.w_[12]"

_ESPNET_BRANCH = r"attn\.linear_(?:q|k|v|out)|cgmlp\.(?:channel_proj1\.0|channel_proj2|csgu\.linear)|merge_proj"
# NeMo's Transformer decoder (multitask AED, EncDecTransfModelBPE): self- and cross-attention, FFN.
_NEMO_TRANSF_DECODER = (
    _ANY + r"transf_decoder\._decoder\.layers\.\d+\."
    r"(?:(?:first|second)_sub_layer\.(?:query_net|key_net|value_net|out_projection)|third_sub_layer\.dense_(?:in|out))"
)
# ESPnet's attention decoder of CTC/attention models (TransformerDecoder and its variants):
# self- and source-attention, FFN; the output layer and the embedding are not gated.
_ESPNET_ATT_DECODER = _ANY + r"decoders\.\d+\.(?:(?:self_attn|src_attn)\.linear_(?:q|k|v|out)|feed_forward\.w_[12])"

_ESPNET_TTS = dict(
    modules=(_TTS_BLOCK + rf"(?:{_ESPNET_ATT}|feed_forward\.w_[12])",),
    ffn=(FFNBlock(_TTS_BLOCK + "feed_forward", "w_1", "w_2"),),
    attention=(AttentionBlock(_TTS_BLOCK + "self_attn"),),
)

PRESETS = {
    p.name: p
    for p in (
        Preset(
            "conformer",
            "Conformer blocks: attention q/k/v/out, both FFNs, pointwise convs "
            "(ESPnet ConformerEncoder and NeMo ConformerEncoder)",
            modules=(
                _ESPNET_BLOCK + rf"(?:{_ESPNET_ATT}|{_ESPNET_FFN}|conv_module\.pointwise_conv[12])",
                _NEMO_BLOCK
                + r"(?:self_attn\.linear_(?:q|k|v|out)|feed_forward[12]\.linear[12]|conv\.pointwise_conv[12])",
            ),
            ffn=(
                FFNBlock(_ESPNET_BLOCK + r"feed_forward(?:_macaron)?", "w_1", "w_2"),
                FFNBlock(_NEMO_BLOCK + r"feed_forward[12]", "linear1", "linear2"),
            ),
            attention=(AttentionBlock(_ESPNET_BLOCK + "self_attn"), AttentionBlock(_NEMO_BLOCK + "self_attn")),
            conv=(ConvBlock(_ESPNET_BLOCK + "conv_module", "norm"), ConvBlock(_NEMO_BLOCK + "conv", "batch_norm")),
        ),
        Preset(
            "transformer",
            "Transformer encoder blocks: attention q/k/v/out and FFN (ESPnet TransformerEncoder)",
            modules=(_ESPNET_BLOCK + rf"(?:{_ESPNET_ATT}|{_ESPNET_FFN})",),
            ffn=(FFNBlock(_ESPNET_BLOCK + "feed_forward", "w_1", "w_2"),),
            attention=(AttentionBlock(_ESPNET_BLOCK + "self_attn"),),
        ),
        Preset(
            "e_branchformer",
            "E-Branchformer blocks: attention q/k/v/out, cgMLP channel projections, merge_proj, "
            "both FFNs (ESPnet EBranchformerEncoder)",
            modules=(_ESPNET_BLOCK + rf"(?:{_ESPNET_BRANCH}|{_ESPNET_FFN})",),
            ffn=(FFNBlock(_ESPNET_BLOCK + r"feed_forward(?:_macaron)?", "w_1", "w_2"),),
            attention=(AttentionBlock(_ESPNET_BLOCK + "attn"),),
        ),
        Preset(
            "branchformer",
            "Branchformer blocks: attention q/k/v/out, cgMLP channel projections, merge_proj "
            "(ESPnet BranchformerEncoder)",
            modules=(_ESPNET_BLOCK + rf"(?:{_ESPNET_BRANCH})",),
            attention=(AttentionBlock(_ESPNET_BLOCK + "attn"),),
        ),
        Preset(
            "espnet_transducer",
            "Conformer and E-Branchformer blocks of espnet2's transducer encoder (asr_transducer): "
            "attention q/k/v/out, FFNs, pointwise convs, cgMLP projections, merge_proj",
            modules=(_ANY + r"encoders\.blocks\.\d+\.(?:self_att\.linear_(?:q|k|v|out)|feed_forward(?:_macaron)?\.w_[12]"
                     r"|conv_mod\.pointwise_conv[12]|channel_proj1\.0|channel_proj2|merge_proj)",),
            ffn=(FFNBlock(_ANY + r"encoders\.blocks\.\d+\.feed_forward(?:_macaron)?", "w_1", "w_2"),),
        ),
        Preset(
            "rnnt_decoder",
            "Transducer prediction network (LSTM) and joint network (NeMo RNNTDecoder / RNNTJoint); "
            "opt-in beside an encoder preset",
            modules=(_ANY + r"(?:decoder\.prediction\.dec_rnn\.lstm|joint\.(?:pred|enc|joint_net\.\d+))",),
        ),
        Preset(
            "aed_decoder",
            "Transformer decoder of attention encoder-decoder models: self- and cross-attention, FFN "
            "(NeMo EncDecMultiTaskModel / EncDecTransfModelBPE; the attention decoder of ESPnet's "
            "CTC/attention models); opt-in beside an encoder preset",
            modules=(_NEMO_TRANSF_DECODER, _ESPNET_ATT_DECODER),
        ),
        Preset(
            "wav2vec2",
            "The paper's 6 linears per block of Hugging Face Wav2Vec2 / HuBERT / WavLM "
            "encoder layers (q, k, v, out, FFN in, FFN out); the CNN feature encoder is not gated",
            modules=(
                _ANY
                + r"layers\.\d+\.(?:attention\.(?:q|k|v|out)_proj|feed_forward\.(?:intermediate|output)_dense)",
            ),
            ffn=(FFNBlock(_ANY + r"layers\.\d+\.feed_forward", "intermediate_dense", "output_dense"),),
            attention=(AttentionBlock(_ANY + r"layers\.\d+\.attention", "q_proj", "k_proj", "v_proj", "out_proj",
                                      position=None, head_params=(), heads_attr="num_heads",
                                      head_dim_attr="head_dim"),),
        ),
        Preset("fastspeech2", "ESPnet FastSpeech2 / FastSpeech encoder blocks: attention and conv FFN", **_ESPNET_TTS),
        Preset("transformer_tts", "ESPnet Transformer-TTS encoder blocks: attention and FFN", **_ESPNET_TTS),
        Preset(
            "fastspeech2_decoder",
            "ESPnet FastSpeech2 / FastSpeech decoder blocks (attention and conv FFN, mel frames) and the "
            "variance adaptor's duration, pitch and energy predictor convs; opt-in beside fastspeech2",
            modules=(_ANY + r"decoder\.encoders\.\d+\.(?:" + _ESPNET_ATT + r"|feed_forward\.w_[12])",
                     _ANY + r"(?:duration|pitch|energy)_predictor\.conv\.\d+\.0"),
            ffn=(FFNBlock(_ANY + r"decoder\.encoders\.\d+\.feed_forward", "w_1", "w_2"),),
            attention=(AttentionBlock(_ANY + r"decoder\.encoders\.\d+\.self_attn"),),
        ),
        Preset(
            "tacotron2",
            "ESPnet Tacotron2 encoder: conv stack and BLSTM weight matrices",
            modules=(_ANY + r"enc\.(?:convs\.\d+\.0|blstm)",),
        ),
        Preset(
            "tacotron2_decoder",
            "ESPnet Tacotron2 decoder: attention projections and location conv, LSTM cells, prenet, "
            "postnet convs (not the feature and stop-token outputs); opt-in beside tacotron2",
            modules=(_ANY + r"dec\.(?:att\.(?:mlp_enc|mlp_dec|mlp_att|loc_conv)|lstm\.\d+\.cell"
                     r"|prenet\.prenet\.\d+\.0|postnet\.postnet\.\d+\.0)",),
        ),
        Preset(
            "fastpitch",
            "NeMo FastPitch text encoder (FFTransformerEncoder): attention qkv/out and conv FFN",
            modules=(_ENCODER_ONLY + _FFT_LAYER,),
        ),
        Preset(
            "fastpitch_decoder",
            "NeMo FastPitch decoder (FFTransformerDecoder, mel frames): attention qkv/out and conv FFN; "
            "opt-in beside fastpitch",
            modules=(_ANY + r"decoder\." + _FFT_LAYER,),
        ),
    )
}

AUTO = "auto"
# preset: auto. Class names (or module.qualname where a name is ambiguous) of the model, its
# encoder or TTS network -> the preset for them.
AUTO_PRESETS = {
    "ConformerEncoder": "conformer",  # ESPnet and NeMo (FastConformer is NeMo's ConformerEncoder)
    "TransformerEncoder": "transformer",
    "EBranchformerEncoder": "e_branchformer",
    "BranchformerEncoder": "branchformer",
    "espnet2.asr_transducer.encoder.encoder.Encoder": "espnet_transducer",
    "Wav2Vec2Model": "wav2vec2",
    "HubertModel": "wav2vec2",
    "WavLMModel": "wav2vec2",
    "HuggingFaceSSLEncoder": "wav2vec2",
    "HFSSLEncoder": "wav2vec2",
    "FastSpeech2": "fastspeech2",
    "FastSpeech": "fastspeech2",
    "espnet2.tts.transformer.transformer.Transformer": "transformer_tts",
    "Tacotron2": "tacotron2",
    "FastPitchModel": "fastpitch",
}
