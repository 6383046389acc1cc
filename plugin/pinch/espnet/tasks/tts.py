"""espnet2's TTSTask (``espnet2.bin.tts_train``) with the pruning choice: the TTS network's
encoder is gated by its preset (``fastspeech2``, ``transformer_tts``, ``tacotron2``, or
``auto``), and espnet2's own trainer, checkpoints and ``Text2Speech`` do the rest."""
from espnet2.tasks.tts import TTSTask as _TTSTask

from pinch.espnet.choices import pruning_choices
from pinch.espnet.tasks.pruning_task import PruningTask


class TTSTask(PruningTask, _TTSTask):
    class_choices_list = _TTSTask.class_choices_list + [pruning_choices]
