"""ESPnet adapter: pruning as an espnet2 ``pruning`` / ``pruning_conf`` choice.

espnet2 has no plugin entry points: it builds its parser from each task's
``class_choices_list`` and rejects unknown YAML keys. ``pinch.espnet.tasks`` holds task
subclasses that add the pruning choice; ``pinch.espnet.bin.*_train`` run espnet2's own
``main`` with them, so importing the entry point is the registration.

Every espnet2 task imports g2p_en, which tries to download NLTK data at import: the
adapter refuses downloads before any of espnet2 is imported (``pinch.offline``).
"""
from pinch.offline import forbid_downloads

forbid_downloads()
