"""metrics.csv: one row per evaluation, appended as the run goes."""
import csv
import math
from pathlib import Path

from trainlab.errors import FileError

# train_loss/train_penalty/train_acc: running means over the steps since the last evaluation, in train
# mode (dropout on, augmented batches), empty in the step-0 row; train_eval_*: a fixed sample of the
# training split evaluated like val. lr: the rate the last step before the evaluation trained at.
COLUMNS = ["step", "epoch", "lr", "train_loss", "train_penalty", "train_acc", "val_loss", "val_acc",
           "train_eval_loss", "train_eval_acc", "time_s"]


class MetricsFile:
    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, step: int) -> None:
        """On resume, drop rows logged after the checkpoint (they will be recomputed)."""
        rows = [r for r in self.read() if int(r["step"]) <= step]
        self._write_all(rows)

    def read(self) -> list[dict]:
        """The rows as text; a file that is not CSV text (binary, damaged) is a FileError naming it."""
        if not self.path.exists():
            return []
        try:
            with open(self.path, newline="", encoding="utf-8") as fh:
                return list(csv.DictReader(fh))
        except (UnicodeDecodeError, csv.Error) as err:
            raise FileError(self.path, f"not a metrics file of comma-separated text ({type(err).__name__})") from None
        except OSError as err:  # a folder in its place, no permission
            raise FileError(self.path, f"cannot be read ({err.strerror})") from None

    def header(self) -> list[str] | None:
        if not self.path.exists():
            return None
        with open(self.path, newline="") as fh:
            return next(csv.reader(fh), None)

    def append(self, row: dict) -> None:
        """The first row sets the columns: the standard ones, then any extras (EMA, diagnostics); a
        later row with new extras (diagnostics start after the step-0 row) widens the file."""
        header = self.header()
        if header is not None and any(k not in header for k in row):
            rows = self.read()
            self._write_all(rows, header + [k for k in row if k not in header])
            header = self.header()
        with open(self.path, "a", newline="") as fh:
            fields = header or COLUMNS + [k for k in row if k not in COLUMNS]
            writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            if header is None:
                writer.writeheader()
            writer.writerow({k: _fmt(row.get(k)) for k in fields})

    def _write_all(self, rows: list[dict], fields: list[str] | None = None) -> None:
        tmp = self.path.with_suffix(".tmp")
        fields = fields or self.header() or COLUMNS
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
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
    for number, row in enumerate(MetricsFile(path).read(), start=2):
        try:
            out.append({k: (float(v) if v not in ("", None) else math.nan) for k, v in row.items()})
        except (TypeError, ValueError):  # a hand-edited or damaged row (a word, a row longer than the header)
            raise FileError(path, f"line {number} is not a row of numbers") from None
    return out


STEP_LOSSES = "step_losses.csv"  # beside metrics.csv: the training loss of every optimizer step


def write_step_losses(path: Path, losses: list[float]) -> None:
    """The per-step training losses (last.pt's step_losses), as a file the figures read without torch."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text("step,loss\n" + "".join(f"{i},{_fmt(float(v))}\n" for i, v in enumerate(losses, start=1)))
    tmp.replace(path)


def read_step_losses(path: Path) -> list[float]:
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        return [float(line.partition(",")[2]) for line in lines if line]
    except (UnicodeDecodeError, ValueError):
        raise FileError(path, "not a step,loss file of numbers (damaged? delete it to draw without it)") from None
