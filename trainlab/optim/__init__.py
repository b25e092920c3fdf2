"""Optimization: losses, optimizers, learning-rate schedules, regularizers."""
