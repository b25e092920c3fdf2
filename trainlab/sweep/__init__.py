"""Sweeps: reading job folders, ablation tables, sweep figures, search-range checks.

Entry points: `trainlab.sweep.cli.table_main` (the `trainlab table` command),
`trainlab.sweep.cli.write_sweep_report` (called by the engine after a multirun)
and `trainlab.sweep.aggregate.edge_warnings` (for random searches).
"""
