"""metrics.csv: one row per evaluation, appended as the run goes."""
import csv
import math
from pathlib import Path

COLUMNS = ["step", "epoch", "lr", "train_loss", "train_penalty", "train_acc", "val_loss", "val_acc", "time_s"]


class MetricsFile:
    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, step: int) -> None:
        """On resume, drop rows logged after the checkpoint (they will be recomputed)."""
        rows = [r for r in self.read() if int(r["step"]) <= step]
        self._write_all(rows)

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as fh:
            return list(csv.DictReader(fh))

    def append(self, row: dict) -> None:
        new = not self.path.exists()
        with open(self.path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(row.get(k)) for k in COLUMNS})

    def _write_all(self, rows: list[dict]) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(self.path)


def _fmt(value):
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return value


def read_floats(path: Path) -> list[dict]:
    """Rows with numeric values (for plots and diagnosis)."""
    out = []
    for row in MetricsFile(path).read():
        out.append({k: (float(v) if v not in ("", None) else math.nan) for k, v in row.items()})
    return out
