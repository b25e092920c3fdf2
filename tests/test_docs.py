"""The documentation is checked like code: the site builds with `mkdocs build --strict` (no broken link,
no page left out of the nav), the generated reference lists every option and key that `trainlab list`
does, every preset has its lesson, the README stays short with working links, the commands marked
runnable on the Get-started page run, and (slow) a lesson page shows its table and figure in Chromium.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
pytest.importorskip("mkdocs", reason="the docs extra (in .[dev]) is not installed")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT,
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


def test_site_builds_strict_with_every_page(site):
    for page in ["index.html", "get-started/index.html", "lessons/index.html", "benchmarks/index.html",
                 "guide/reading-tables/index.html", "how-to/slurm/index.html", "reference/cli/index.html"]:
        assert (site / page).is_file(), page
    # the Benchmarks page is BENCHMARKS.md, included as it is
    assert "Interleaved repetitions" in (site / "benchmarks/index.html").read_text()
    # every command has its --help on the Commands page
    cli = (site / "reference/cli/index.html").read_text()
    for command in ["train", "resume", "resume-sweep", "list", "table", "ensemble", "lr-find"]:
        assert f"$ trainlab {command} --help" in cli


def _catalogue() -> dict[str, dict[str, list[str]]]:
    """group -> option -> keys, parsed from what `trainlab list` prints (trainlab.app.catalogue)."""
    from trainlab.app.catalogue import describe_group
    from trainlab.app.compose import groups

    out: dict[str, dict[str, list[str]]] = {}
    for group in groups():
        options: dict[str, list[str]] = {}
        current = None
        for line in describe_group(group).splitlines()[1:]:
            if line.startswith("      "):
                key = line.strip().split(" ")[0]
                if not key.endswith(".*"):
                    options[current].append(key)
            elif line.startswith("  "):
                current = line.split()[0]
                options[current] = []
        out[group] = options
    return out


def test_reference_lists_every_option_and_key_of_trainlab_list(site):
    sys.path.insert(0, str(ROOT / "scripts"))
    from gen_reference import anchor

    catalogue = _catalogue()
    assert len(catalogue) >= 14 and "optimizer" in catalogue and "adam" in catalogue["optimizer"]
    index = (site / "reference/options/index.html").read_text()
    for group, options in catalogue.items():
        html = (site / f"reference/options/{group}/index.html").read_text()
        assert f'href="{group}/' in index, group
        for option, keys in options.items():
            start = html.find(f'id="{anchor(option)}"')
            assert start >= 0, f"{group}={option} has no section"
            section = html[start:html.find("<h2", start + 1)]
            for key in keys:
                assert f"<code>{key}</code>" in section, f"{group}={option}: key {key} missing"


def test_every_experiment_preset_has_a_lesson_with_table_and_figure(site):
    presets = sorted(p.stem for p in (ROOT / "conf/experiment").glob("*.yaml"))
    assert len(presets) >= 10
    nav = (ROOT / "mkdocs.yml").read_text()
    for name in presets:
        assert f"lessons/{name}.md" in nav, name
        html = (site / f"lessons/{name}/index.html").read_text()
        assert "<table>" in html and f'src="../img/{name}.png"' in html, name
        assert (site / f"lessons/img/{name}.png").is_file()
        assert re.search(r"Measured on \d{4}-\d\d-\d\d by <code>scripts/run_presets.py</code> \(commit <code>\w+</code>\)",
                         html), name  # where and when the numbers come from
        assert f'src="../img/{name}-table.png"' in html and (site / f"lessons/img/{name}-table.png").is_file(), name


def test_lesson_figures_are_drawn_from_the_tables_on_their_pages():
    sys.path.insert(0, str(ROOT / "scripts"))
    from lesson_figures import mean_std, read_table

    header, rows, _ = read_table(DOCS / "lessons/batchnorm_lr.md")
    assert header[:3] == ["norm", "optimizer.lr", "best val acc (%)"]
    assert [mean_std(r[2]) for r in rows][:3] == [(92.21, 0.18), (90.03, 1.95), (None, 0.0)]


def test_readme_is_short_and_its_links_work_here_and_in_the_site(site):
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    # the two set-up commands, unchanged
    assert "bash scripts/setup.sh && .venv/bin/trainlab train\n" in readme
    assert "bash scripts/setup.sh && .venv/bin/python -m pytest -q\n" in readme
    assert "mkdocs serve" in readme
    links = re.findall(r"\]\(((?!https?:)[^)#]+)(?:#[^)]*)?\)", readme)
    assert len(links) >= 15
    for link in links:
        assert link.startswith("docs/") and (ROOT / link).exists(), link  # on the repository host
    home = (site / "index.html").read_text()
    hrefs = re.findall(r'(?:href|src)="([^"]+)"', home)
    assert not [h for h in hrefs if h.startswith("docs/")], hrefs  # rewritten for the site...
    assert 'href="get-started/"' in home and 'src="assets/reading-tables-activations.png"' in home  # ...and resolved


# What each section of the 1,041-line README became: (docs page, a phrase it still holds there).
MOVED = {
    "Usage by example": ("reference/commands-by-example.md", "TAB-complete commands, their flags, options and keys in bash"),
    "Layout": ("reference/layout.md", "python -m trainlab.schemas.yaml_export"),
    "Config groups": ("reference/semantics.md", "is the **drop** probability"),
    "Real datasets offline": ("how-to/datasets.md", "dataset=image_folder dataset.root=DIR"),
    "A run folder": ("reference/run-folder.md", "What `metrics.csv`'s columns mean"),
    "Runs land / folder lock (NFS, Lustre)": ("reference/run-folder.md", "Lustre mount without `-o flock`"),
    "Loggers": ("how-to/trackers.md", "wandb sync outputs/runs/<run>/wandb/offline-run-*"),
    "Sweeps and ablation tables": ("reference/table-columns.md", "`steps_to(val_loss<=0.3)`"),
    "Experiment presets": ("lessons/index.md", "A preset is a sweep"),
    "Random search": ("how-to/search.md", "Sampled values keep 4 significant digits"),
    "Optuna search": ("how-to/search.md", "hydra.sweeper.pruner=median"),
    "Cross-validation": ("how-to/cross-validation.md", "dataset.cv.fold=range(5)"),
    "Resuming a sweep": ("how-to/resume.md", "time-sliced sweeps"),
    "Parallel and cluster launchers": ("how-to/parallel.md", "hydra.launcher.n_jobs=4"),
    "SLURM, preemption": ("how-to/slurm.md", "max_num_timeout"),
    "Seeds side by side": ("how-to/stacked-seeds.md", "torch.func.vmap"),
    "Resuming": ("how-to/resume.md", "trainer.stop_after=N"),
    "Errors": ("reference/errors.md", "HYDRA_FULL_ERROR=1"),
    "Your own models": ("how-to/own-model.md", "TRAINLAB_PLUGINS"),
    "Babysitting a run": ("how-to/babysitting.md", "trainlab lr-find"),
    "Live diagnostics": ("how-to/babysitting.md", "diag/3.update_ratio"),
    "Training techniques beyond the groups": ("how-to/techniques.md", "transfer.backbone_lr_mult=0.1"),
    "Fault tolerance": ("how-to/resume.md", "no space left on\n  device"),
    "Speed and scale": ("how-to/speed.md", "trainer.data_placement"),
    "Several processes (DDP)": ("how-to/parallel.md", "torchrun --nproc_per_node=N"),
    "Tests": ("get-started.md", "TRAINLAB_SHARED_DATA"),
}


@pytest.mark.parametrize("section", sorted(MOVED))
def test_what_the_readme_dropped_is_in_the_docs(section):
    page, phrase = MOVED[section]
    assert phrase in (DOCS / page).read_text(), f"{section}: {phrase!r} not in docs/{page}"


def runnable_blocks(page: Path) -> list[str]:
    """The shell blocks right after a `<!-- runnable -->` line."""
    return re.findall(r"<!-- runnable -->\n```bash\n(.*?)```", page.read_text(), flags=re.S)


def test_get_started_runnable_blocks_use_real_commands():
    """The fast half: every trainlab command on the page exists (the slow test below runs them all)."""
    blocks = runnable_blocks(DOCS / "get-started.md")
    top = subprocess.run([sys.executable, "-m", "trainlab", "--help"], capture_output=True, text=True, cwd=ROOT)
    commands = {line.split()[0] for line in top.stdout.split("commands:", 1)[1].splitlines() if line.startswith("  ")}
    used = [line.split()[1] for block in blocks for line in block.splitlines() if line.startswith("trainlab ")]
    assert used and set(used) <= commands, set(used) - commands


@pytest.mark.slow  # 9 jobs and four more processes: 108-159 s here on 2 shared cores (load 7-10)
def test_get_started_runnable_blocks_run(tmp_path):
    blocks = runnable_blocks(DOCS / "get-started.md")
    assert len(blocks) >= 5
    # Tiny settings: every `trainlab train` the page shows trains 1 epoch on 200 examples here.
    prelude = ('trainlab() { if [ "$1" = train ]; then shift; command trainlab train "$@" trainer.epochs=1 '
               'dataset.subset=200; else command trainlab "$@"; fi; }\nset -e\n')
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
           "TRAINLAB_FIGURES": "inline"}
    outputs = []
    for block in blocks:
        res = subprocess.run(["bash", "-c", prelude + block], cwd=tmp_path, capture_output=True, text=True,
                             env=env, timeout=300)
        assert res.returncode == 0, f"{block}\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
        outputs.append(res.stdout + res.stderr)
    assert "completed: results in" in outputs[0]
    assert "summary.json" in outputs[1] and "step,epoch,lr" in outputs[1]
    assert "resumed from" in outputs[2]
    assert "9/9 jobs finished" in outputs[3]
    assert "epochs to val_acc>=90%" in outputs[4] and "sigmoid" in outputs[4]


def _serve(folder: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# Loaded next to the site: opens a lesson in a same-origin iframe and writes what it shows into the DOM.
PROBE = """<!doctype html><html><body><iframe id="f" src="lessons/batchnorm_lr/" width="1200" height="900"></iframe>
<pre id="out">pending</pre><script>
document.getElementById('f').onload = function () {
  var doc = this.contentDocument, img = doc.querySelector('img[src$="batchnorm_lr.png"]');
  var rows = doc.querySelectorAll('article table tbody tr').length;
  var check = function () {
    if (img && !img.complete) { return setTimeout(check, 100); }
    document.getElementById('out').textContent = 'rows=' + rows + ' img=' + (img ? img.naturalWidth : -1)
      + ' title=' + doc.querySelector('h1').textContent;
  };
  check();
};
</script></body></html>"""


@pytest.mark.slow
def test_lesson_page_shows_its_table_and_figure_in_chromium(site, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("needs Chromium (apt-get install chromium)")
    (site / "probe.html").write_text(PROBE)
    server = _serve(site)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/probe.html"
        res = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
                              "--dump-dom", url], capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    found = re.search(r"rows=(\d+) img=(-?\d+) title=([^<]*)", res.stdout)
    assert found, res.stdout[-2000:] + res.stderr[-2000:]
    rows, width, title = int(found.group(1)), int(found.group(2)), found.group(3)
    assert rows == 6  # the 2 norms x 3 rates of the measured table
    assert width > 300  # the figure loaded and decoded (0 when it is missing or broken)
    assert "batchnorm_lr" in title
