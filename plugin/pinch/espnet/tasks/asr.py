"""espnet2's ASRTask with the pruning choice."""
from espnet2.tasks.asr import ASRTask as _ASRTask

from pinch.espnet.choices import pruning_choices
from pinch.espnet.tasks.pruning_task import PruningTask


class ASRTask(PruningTask, _ASRTask):
    # espnet2 adds --pruning/--pruning_conf from this list, and --print_config fills
    # pruning_conf with the chosen method's defaults.
    class_choices_list = _ASRTask.class_choices_list + [pruning_choices]
