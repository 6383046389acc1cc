"""``python -m pinch.espnet.bin.asr_train``: espnet2's asr_train with the pruning choice.

Importing this module is the registration: multi-process training spawns workers that
re-import ``pinch.espnet.tasks.asr`` and find the same task class.
"""
from pinch.espnet.tasks.asr import ASRTask


def get_parser():
    return ASRTask.get_parser()


def main(cmd=None):
    r"""ASR training, optionally compressing in the same pass.

    Example:
        % python -m pinch.espnet.bin.asr_train --config conf/train_asr.yaml \
            --pruning sspg --pruning_conf target_sparsity=0.65 --pruning_conf preset=conformer
    """
    ASRTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
