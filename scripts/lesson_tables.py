"""Put a presets run's tables into the lesson pages: `python scripts/lesson_tables.py DIR` after
`python scripts/run_presets.py --out DIR`. For each preset it ran, docs/lessons/<name>.md gets that
run's table (with its intervals and legend lines) in place of the old one, the box saying when, where
and at which commit it was measured, with the wall and CPU time and the load, and the sweep's
table.png as img/<name>-table.png. The reading under the table is the author's to rewrite: this
script only moves numbers."""
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "docs" / "lessons"


def sections(report: Path) -> dict[str, str]:
    text = report.read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r"^## (\S+)\n(.*?)(?=^## |\Z)", text, re.S | re.M)}


def update(name: str, section: str, out: Path, commit: str) -> bool:
    page = LESSONS / f"{name}.md"
    timing = re.search(r"exit (\d+), (\d+) s wall, (\d+) CPU s, load average \(1/5/15 min\) (\S+ \S+ \S+) before, "
                       r"(\S+ \S+ \S+) after", section)
    table = [line for line in section.splitlines() if line.startswith("|")]
    legend = [line for line in section.splitlines() if line.startswith("- ") and " vs " not in line[:3]]
    if not page.is_file() or timing is None or timing.group(1) != "0" or not table:
        return False
    text = page.read_text()
    box = (f"    Measured on {date.today().isoformat()} by `scripts/run_presets.py` (commit `{commit}`), which ran "
           f"every preset exactly as\n    above, one after another, on the project's 2-core CPU machine with nothing "
           f"else running:\n    {timing.group(2)} s wall, {timing.group(3)} CPU s, load average (1/5/15 min) "
           f"{timing.group(4)} before and {timing.group(5)} after. Each cell is the mean ± sample\n"
           f"    standard deviation over the seeds with the 95% confidence interval of the mean; Δ is tested against "
           f"the baseline row\n    ([Reading ablation tables](../guide/reading-tables.md) says what each part claims).")
    text = re.sub(r"    Measured on .*?\n(?=\n)", box + "\n", text, count=1, flags=re.S)
    text = re.sub(r"\(\d+ s of wall time on the 2-core machine below\)",
                  f"({timing.group(2)} s of wall time on the 2-core machine below)", text, count=1)
    old = re.search(r"(?:^\|.*\n)+(?:\n(?:^- .*\n)+)?", text, re.M)  # the table and its legend lines
    new = "\n".join(table) + "\n\n" + "\n".join(legend) + "\n"
    text = text[:old.start()] + new + text[old.end():]
    picture = out / name / "table.png"
    if picture.is_file():
        shutil.copy(picture, LESSONS / "img" / f"{name}-table.png")
        if f"img/{name}-table.png" not in text:
            text = text.replace("\n## Reading", f"\n![table.png of this run: each row's mean and 95% interval, the "
                                f"baseline as a line, ≈ rows hollow](img/{name}-table.png)\n\n## Reading", 1)
    page.write_text(text)
    return True


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    for name, section in sections(out / "presets.md").items():
        print(f"{name}: {'updated' if update(name, section, out, commit) else 'left as it was (no table or a failed run)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
