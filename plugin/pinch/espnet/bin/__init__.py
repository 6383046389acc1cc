"""Entry points that register pinch's tasks, then run espnet2's own main."""
from pinch.offline import forbid_downloads

forbid_downloads()
