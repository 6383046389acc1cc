"""espnet2's ASRTask with the pruning choice, and pinch's encoders in espnet2's choices.

espnet2.tasks.asr builds encoders from its module-level ``encoder_choices``; adding the
``hf_ssl`` entry there (on import, before any parser exists) is what lets espnet2's own
training and inference code build it.
"""
from espnet2.tasks.asr import ASRTask as _ASRTask
from espnet2.tasks.asr import encoder_choices

from pinch.espnet.choices import pruning_choices
from pinch.espnet.encoders.hf_ssl import HuggingFaceSSLEncoder
from pinch.espnet.tasks.pruning_task import PruningTask

encoder_choices.classes.setdefault("hf_ssl", HuggingFaceSSLEncoder)


class ASRTask(PruningTask, _ASRTask):
    # espnet2 adds --pruning/--pruning_conf from this list, and --print_config fills
    # pruning_conf with the chosen method's defaults.
    class_choices_list = _ASRTask.class_choices_list + [pruning_choices]
