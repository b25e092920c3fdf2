"""`python -m trainlab ...` is the same as `trainlab ...`."""
from trainlab.app.cli import entry

entry()
