"""``python -m pinch.espnet.bin.asr_transducer_train``: espnet2's asr_transducer_train with the
pruning choice (the transducer encoder's blocks: ``preset: auto`` or ``espnet_transducer``)."""
from pinch.espnet.tasks.asr_transducer import ASRTransducerTask


def get_parser():
    return ASRTransducerTask.get_parser()


def main(cmd=None):
    ASRTransducerTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
