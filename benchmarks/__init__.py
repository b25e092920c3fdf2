"""trainlab's benchmarks, one entry point: `python -m benchmarks SUBCOMMAND [options]` (see --help).

Every comparator, in the benchmark's own process or as a command it starts, runs under the same
OMP_WAIT_POLICY=PASSIVE (benchmarks.common.OMP_ENV); whole-process timings go through hyperfine
(benchmarks.processes). Results print as markdown tables and, with --out, go into BENCHMARKS.md.
"""
