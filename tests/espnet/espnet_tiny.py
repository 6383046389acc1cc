"""Tiny espnet2 ASR models built through pinch's task, as the recipe builds them."""
import torch


TOKENS = ["<blank>", "<unk>", "a", "b", "c", "d", "e", " ", "<sos/eos>"]


def tiny_cmd(*extra):
    """Command-line options of a ~20k-parameter Conformer CTC model on 16 kHz audio."""
    return [
        "--token_list", *[],  # filled by parse_tiny
        "--input_size", "20",
        "--normalize", "none",
        "--encoder", "conformer",
        "--encoder_conf", "output_size=16",
        "--encoder_conf", "linear_units=32",
        "--encoder_conf", "attention_heads=2",
        "--encoder_conf", "num_blocks=2",
        "--encoder_conf", "input_layer=linear",
        "--encoder_conf", "cnn_module_kernel=3",
        "--encoder_conf", "macaron_style=true",
        "--encoder_conf", "rel_pos_type=latest",
        "--encoder_conf", "pos_enc_layer_type=rel_pos",
        "--encoder_conf", "selfattention_layer_type=rel_selfattn",
        "--model_conf", "ctc_weight=1.0",
        *extra,
    ]


def parse_tiny(tmp_path, *extra):
    from pinch.espnet.tasks.asr import ASRTask

    token_list = tmp_path / "tokens.txt"
    token_list.write_text("\n".join(TOKENS) + "\n")
    cmd = tiny_cmd(*extra)
    cmd[1:1] = [str(token_list)]
    return ASRTask.get_parser().parse_args(cmd)


def batch(n=4, frames=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.full((n,), frames)
    text = torch.randint(2, 7, (n, 5), generator=g)
    return {
        "speech": torch.randn(n, frames, 20, generator=g),
        "speech_lengths": lengths,
        "text": text,
        "text_lengths": torch.full((n,), 5),
    }
