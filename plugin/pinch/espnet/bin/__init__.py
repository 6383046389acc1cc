"""Entry points that register pinch's tasks, then run espnet2's own main."""
