"""Presets match the real classes of the toolkits they name (tiny instances)."""
import torch

import pinch
from pinch.targets import select_targets


def _names(model, preset):
    return [t.qualified_name for t in select_targets(model, preset=preset)]


def test_conformer_preset_on_espnet_conformer():
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

    enc = ConformerEncoder(input_size=20, output_size=16, attention_heads=2, linear_units=32, num_blocks=2,
                           input_layer="conv2d", macaron_style=True, use_cnn_module=True, cnn_module_kernel=3)
    names = _names(enc, "conformer")
    assert len(names) == 2 * (4 + 4 + 2)  # q k v out, two FFNs x 2, two pointwise convs
    assert "encoders.1.conv_module.pointwise_conv2.weight" in names
    assert not any(n.startswith("embed") for n in names), "the subsampling frontend is not gated"


def test_conformer_preset_on_nemo_conformer():
    from nemo.collections.asr.modules import ConformerEncoder

    enc = ConformerEncoder(feat_in=20, n_layers=2, d_model=16, n_heads=2, ff_expansion_factor=2,
                           subsampling_factor=4, conv_kernel_size=3)
    names = _names(enc, "conformer")
    assert len(names) == 2 * (4 + 4 + 2)
    assert "layers.0.feed_forward2.linear1.weight" in names and "layers.1.conv.pointwise_conv1.weight" in names
    pinch.Pruner(enc, target_sparsity=0.5, preset="conformer", granularity="structured", total_steps=5)


def test_transformer_preset_on_espnet_transformer():
    from espnet2.asr.encoder.transformer_encoder import TransformerEncoder

    enc = TransformerEncoder(input_size=20, output_size=16, attention_heads=2, linear_units=32, num_blocks=3)
    assert len(_names(enc, "transformer")) == 3 * 6


def test_aed_decoder_preset_gates_espnets_attention_decoder_beside_the_encoder():
    from espnet2.asr.decoder.transformer_decoder import TransformerDecoder
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

    model = torch.nn.Module()
    model.encoder = ConformerEncoder(input_size=20, output_size=16, attention_heads=2, linear_units=32,
                                     num_blocks=1, macaron_style=True, use_cnn_module=True, cnn_module_kernel=3)
    model.decoder = TransformerDecoder(vocab_size=12, encoder_output_size=16, attention_heads=2, linear_units=32,
                                       num_blocks=2)
    decoder = _names(model, "aed_decoder")
    assert len(decoder) == 2 * (4 + 4 + 2)  # self- and source-attention q k v out, the FFN
    assert all(n.startswith("decoder.decoders.") for n in decoder), "the output layer and embedding stay dense"
    both = _names(model, ["conformer", "aed_decoder"])
    assert len(both) == 10 + len(decoder)
    assert _names(model, "conformer") == [n for n in both if n.startswith("encoder.")]


def test_wav2vec2_preset_gates_the_papers_six_linears_per_block():
    from transformers import HubertConfig, HubertForCTC, Wav2Vec2Config, Wav2Vec2ForCTC

    small = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
                 conv_stride=(5, 2), conv_kernel=(10, 3), vocab_size=10, num_conv_pos_embeddings=4,
                 num_conv_pos_embedding_groups=2)
    for model in (Wav2Vec2ForCTC(Wav2Vec2Config(**small)), HubertForCTC(HubertConfig(**small))):
        names = _names(model, "wav2vec2")
        assert len(names) == 2 * 6
        assert not any("feature_extractor" in n or "lm_head" in n for n in names)


def test_fastspeech2_preset_gates_the_encoder_not_the_decoder():
    from espnet2.tts.fastspeech2 import FastSpeech2

    model = FastSpeech2(idim=10, odim=8, adim=16, aheads=2, elayers=1, eunits=32, dlayers=1, dunits=32,
                        postnet_layers=0)
    names = _names(model, "fastspeech2")
    assert names and all(n.startswith("encoder.encoders.") for n in names)


def test_tacotron2_preset_gates_convs_and_blstm():
    from espnet2.tts.tacotron2 import Tacotron2

    torch.manual_seed(0)  # no initial weight under the initial threshold (1e-5), whatever ran before
    model = Tacotron2(idim=10, odim=8, embed_dim=16, elayers=1, eunits=16, econv_layers=2, econv_chans=16,
                      dlayers=1, dunits=16, prenet_layers=1, prenet_units=16, postnet_layers=0, adim=16, aconv_chans=4)
    names = _names(model, "tacotron2")
    assert "enc.convs.0.0.weight" in names and "enc.blstm.weight_hh_l0_reverse" in names
    pruner = pinch.Pruner(model, target_sparsity=0.3, preset="tacotron2", total_steps=5)
    assert pruner.sparsity().gated == 0.0


def test_fastpitch_preset_on_nemo_fft_encoder():
    from nemo.collections.tts.modules.transformer import FFTransformerEncoder

    enc = FFTransformerEncoder(n_layer=2, n_head=2, d_model=16, d_head=8, d_inner=32, kernel_size=3, dropout=0.0,
                               dropatt=0.0, n_embed=10, d_embed=16, padding_idx=0)
    names = _names(enc, "fastpitch")
    assert len(names) == 2 * 4 and "layers.1.pos_ff.CoreNet.2.weight" in names
    holder = torch.nn.ModuleDict({"encoder": enc, "decoder": FFTransformerEncoder(
        n_layer=1, n_head=2, d_model=16, d_head=8, d_inner=32, kernel_size=3, dropout=0.0, dropatt=0.0,
        n_embed=10, d_embed=16, padding_idx=0)})
    assert all(n.startswith("encoder.") for n in _names(holder, "fastpitch"))
