"""espnet2's ASRTransducerTask (``espnet2.bin.asr_transducer_train``) with the pruning choice."""
from espnet2.tasks.asr_transducer import ASRTransducerTask as _ASRTransducerTask

from pinch.espnet.choices import pruning_choices
from pinch.espnet.tasks.pruning_task import PruningTask


class ASRTransducerTask(PruningTask, _ASRTransducerTask):
    class_choices_list = _ASRTransducerTask.class_choices_list + [pruning_choices]
