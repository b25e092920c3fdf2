"""`trainlab ensemble SWEEP --per-row`: one ensemble per row of the sweep's table.

A row is what `trainlab table` makes one by default: the jobs that agree on every swept
factor and differ only in their replicate keys (seed, CV fold). Each row's jobs with a best
checkpoint are ensembled on the test set on their own, and the rows are printed as a table:
members, the members' mean test accuracy, the ensemble's, and the gain. This is the question
a seed sweep asks (`experiment=ema_ensembles`: does averaging the five seeds of each rate beat
one model of that rate?); one ensemble of every job would mix the rows' configurations.
"""
from __future__ import annotations

from pathlib import Path

from trainlab.errors import ConfigError


def sweep_rows(paths: list[str]) -> list[tuple[str, dict, list[Path]]]:
    """(label, row values, job folders with checkpoints) per row, in sweep order."""
    from trainlab.sweep.aggregate import swept_keys
    from trainlab.sweep.runs import load_sweeps

    for raw in paths:
        if Path(raw).is_file() or (Path(raw) / "checkpoints").is_dir():
            raise ConfigError("--per-row", raw, "sweep folders (their jobs are grouped into the table's rows); "
                              "a run folder or checkpoint is one member: leave out --per-row")
    records = load_sweeps(paths)
    keys = swept_keys(records)
    rows: dict[tuple, tuple[str, dict, list[Path]]] = {}
    for record in records:
        values = {k: record.lookup(k) for k in keys}
        label = ", ".join(f"{k}={'—' if v is None else v}" for k, v in values.items()) or "all jobs"
        row = rows.setdefault(tuple(values.values()), (label, values, []))
        if (record.path / "checkpoints").is_dir():
            row[2].append(record.path)
    found = [row for row in rows.values() if row[2]]
    if not found:
        raise ConfigError("PATH", " ".join(paths), "sweep folders whose jobs saved checkpoints/best.pt")
    return found


def per_row_main(paths: list[str], snapshots: bool, device: str, out: str | None) -> int:
    from trainlab.app.ensemble_command import check_out_and_device, member_checkpoints, write_json

    rows = sweep_rows(paths)
    members = [member_checkpoints([str(p) for p in jobs], snapshots) for _, _, jobs in rows]
    check_out_and_device(out, device)
    from trainlab.engine.ensemble import ensemble

    results = []
    for (label, values, _), checkpoints in zip(rows, members):
        result = ensemble(checkpoints, device)
        result["members_mean_test_acc"] = sum(m["test_acc"] for m in result["members"]) / result["n"]
        results.append({"row": values, "label": label, **result})
    print_rows(results)
    write_json(out, {"rows": results})
    return 0


def print_rows(results: list[dict]) -> None:
    head = ("row", "members", "members' mean test acc (%)", "ensemble test acc (%)", "gain (pp)")
    lines = [(r["label"], str(r["n"]), f"{100 * r['members_mean_test_acc']:.2f}",
              f"{100 * r['ensemble_test_acc']:.2f}",
              f"{100 * (r['ensemble_test_acc'] - r['members_mean_test_acc']):+.2f}") for r in results]
    widths = [max(len(line[i]) for line in [head, *lines]) for i in range(len(head))]
    for line in [head, *lines]:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))))
