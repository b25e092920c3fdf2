"""The training engine: the loop, evaluation, checkpoints, metrics, plots."""
