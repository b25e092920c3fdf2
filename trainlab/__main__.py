"""`python -m trainlab ...` is the same as `trainlab ...`."""
from trainlab.cli import entry

entry()
