"""``python -m pinch.espnet.bin.tts_train``: espnet2's tts_train with the pruning choice."""
from pinch.espnet.tasks.tts import TTSTask


def get_parser():
    return TTSTask.get_parser()


def main(cmd=None):
    r"""TTS training, optionally compressing the TTS encoder in the same pass.

    Example:
        % python -m pinch.espnet.bin.tts_train --config conf/train_fastspeech2.yaml \
            --pruning sspg --pruning_conf target_sparsity=0.5 --pruning_conf preset=fastspeech2
    """
    TTSTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
