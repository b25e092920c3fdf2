"""trainlab: run and compare neural-network training experiments from YAML configs."""

__version__ = "0.1.0"
