"""Hydra configs shipped with trainlab (a package so Hydra can find them by module name)."""
