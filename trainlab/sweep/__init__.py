"""Sweeps: which jobs a sweep runs, resuming it, reading its job folders, ablation tables and figures.

Entry points: `trainlab.sweep.search.plan_sweep` (the job list of a grid or a seeded
random search, shared by the CLI's checks and trainlab's Hydra sweeper in
hydra_plugins/trainlab_sweeper), `trainlab.sweep.resume` (`trainlab resume-sweep`, and
how a sweep folder's jobs ended), `trainlab.sweep.cli.table_main` (`trainlab table`),
`trainlab.sweep.cli.write_sweep_report` (called by the CLI after every multirun) and
`trainlab.sweep.search_table.edge_warnings` (for random searches). A table's statistics live in
`trainlab.sweep.stats` (intervals, tests, Holm, power; SciPy) and `trainlab.sweep.significance`
(what they mean for a table's rows); its picture, table.png, in `trainlab.sweep.table_figure`.
"""
