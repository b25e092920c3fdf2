"""Open trainlab's tracker output the way a user does: `tensorboard --logdir` and `mlflow ui` on
localhost, looked at in headless Chromium (Debian's `chromium` package). Trains a two-job sweep
(optimizer=adam,momentum, tags=[browse]) and checks that each job's name and a scalar appear, that
TensorBoard's HParams view puts the swept key `optimizer` first (the columns it ticks), and that
MLflow's run page shows the test metric and the tags; saves screenshots.

    python scripts/browse_check.py [--out DIR]     # trains the sweep into DIR/sweep first

Exits 0 when every check passed; prints what it found. Needs .[trackers] and `chromium`;
the `mlflow ui` part also needs .[ui] (the full mlflow package) and is skipped without it.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 60) -> str:
    end = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as res:
                return res.read().decode()
        except OSError:
            if time.time() > end:
                raise
            time.sleep(0.5)


def browse(url: str, shot: Path, budget_ms: int = 15000) -> str:
    """The rendered DOM of a page (after its scripts ran), and a screenshot of it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
              f"--virtual-time-budget={budget_ms}"]
    subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, timeout=120)
    return subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout


def train(out: Path) -> list[str]:
    """A two-job sweep into out/sweep; returns its job folders' names (0_optimizer=adam, ...)."""
    sweep = out / "sweep"
    subprocess.run([sys.executable, "-m", "trainlab", "train", "-m", "optimizer=adam,momentum",
                    "logger=[tensorboard,mlflow]", f"logger.mlflow.tracking_uri=sqlite:///{out}/mlflow.db",
                    "logger.mlflow.experiment=browse", "tags=[browse]", "trainer.epochs=4", "trainer.progress=off",
                    f"hydra.sweep.dir={sweep}"],
                   cwd=ROOT, check=True, capture_output=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return job_names(out)


def job_names(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "sweep").iterdir() if (p / "summary.json").is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/browse_check"))
    parser.add_argument("--no-train", action="store_true", help="look at the runs an earlier call trained into --out")
    args = parser.parse_args()
    out = args.out.absolute()
    if args.no_train:
        names = job_names(out)
    else:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        names = train(out)
    bin_dir = Path(sys.executable).parent
    ok = True
    port = free_port()
    tb = subprocess.Popen([bin_dir / "tensorboard", "--logdir", out / "sweep", "--host", "127.0.0.1", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        runs = wait_for(f"http://127.0.0.1:{port}/data/runs", timeout=120)
        print(f"tensorboard: /data/runs = {runs}")
        dom = browse(f"http://127.0.0.1:{port}/?runFilter=optimizer#timeseries", out / "tensorboard.png")
        for name in names:
            found = name in runs and name in dom
            ok &= found
            print(f"tensorboard: run {name}: {'shown' if found else 'MISSING'}")
        found = "val_acc" in dom
        ok &= found
        print(f"tensorboard: scalar val_acc: {'shown' if found else 'MISSING'}; screenshot {out / 'tensorboard.png'}")
        browse(f"http://127.0.0.1:{port}/#hparams", out / "tensorboard_hparams.png")
        # the HParams table lives in a shadow DOM that --dump-dom leaves out: ask the plugin what it serves
        request = urllib.request.Request(f"http://127.0.0.1:{port}/data/plugin/hparams/experiment",
                                         data=b'{"experimentName": ""}', method="POST",
                                         headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"})
        with urllib.request.urlopen(request, timeout=30) as res:
            experiment = json.loads(res.read())
        infos = experiment["hparamInfos"]  # in the order the view lists (and ticks) them: varied ones first
        metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
        found = infos[0]["name"] == "optimizer" and infos[0].get("differs") and "hparam/test_acc" in metrics
        ok &= bool(found)
        print(f"tensorboard: HParams: first column {infos[0]['name']} (differs: {infos[0].get('differs', False)}), "
              f"then {', '.join(h['name'] for h in infos[1:6])}...; metric hparam/test_acc: "
              f"{'shown' if 'hparam/test_acc' in metrics else 'MISSING'}; screenshot {out / 'tensorboard_hparams.png'}")
    finally:
        tb.terminate()
        tb.wait()
    if not mlflow_ui_installed():  # mlflow-skinny (the .[trackers] extra) has no UI server or web assets
        print("mlflow ui: skipped: it needs the full `mlflow` package, `pip install -e '.[ui]'` "
              "(mlflow-skinny ships no UI)")
        return 0 if ok else 1
    return 0 if check_mlflow_ui(out, names) and ok else 1


def mlflow_ui_installed() -> bool:
    from importlib.util import find_spec

    spec = find_spec("mlflow")
    return spec is not None and any((Path(p) / "server" / "js" / "build" / "index.html").is_file()
                                    for p in spec.submodule_search_locations or [])


def check_mlflow_ui(out: Path, names: list[str]) -> bool:
    """`mlflow ui` on the store: the experiment's Runs page lists both runs, a run's page shows
    its val_acc; the REST API (/api/2.0/mlflow/...) answers the same, for the record."""
    ok, port = True, free_port()
    # one worker: the UI's default four each import the server (pandas, pyarrow...), slow to start
    ui = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{out}/mlflow.db",
                           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], cwd=out,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        api = wait_for(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=browse", timeout=300)
        exp_id = json.loads(api)["experiment"]["experiment_id"]
        request = urllib.request.Request(f"{base}/api/2.0/mlflow/runs/search", method="POST",
                                         data=json.dumps({"experiment_ids": [exp_id]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as res:
            runs = {r["info"]["run_name"]: r for r in json.loads(res.read())["runs"]}
        print(f"mlflow ui: REST runs/search: {sorted(runs)}")
        # the experiment's own page opens on its GenAI overview: the runs table is the Runs tab
        dom = browse(f"{base}/#/experiments/{exp_id}/runs", out / "mlflow.png", 20000)
        for name in names:
            found = name in dom and name in runs
            ok &= found
            print(f"mlflow ui: run {name}: {'shown' if found else 'MISSING'}")
        first = runs[names[0]]
        val_acc = next(m["value"] for m in first["data"]["metrics"] if m["key"] == "val_acc")
        dom = browse(f"{base}/#/experiments/{exp_id}/runs/{first['info']['run_id']}", out / "mlflow_run.png", 20000)
        text = " ".join(re.sub(r"<[^>]+>", " ", dom).split())
        found = f"val_acc {val_acc}" in text
        ok &= found
        print(f"mlflow ui: run {names[0]}: metric val_acc {val_acc}: {'shown' if found else 'MISSING'}")
        test_acc = next(m["value"] for m in first["data"]["metrics"] if m["key"] == "test_acc")
        found = f"test_acc {test_acc}" in text
        ok &= found
        print(f"mlflow ui: run {names[0]}: metric test_acc {test_acc}: {'shown' if found else 'MISSING'}")
        tags = {t["key"]: t["value"] for t in first["data"]["tags"]}
        for key in ("tags", "optimizer", "mlflow.source.git.commit"):
            # the run page lists user tags as `key value`; MLflow's own (mlflow.*) as the run's details
            shown = key in tags and (f"{key} {tags[key]}" in text or tags[key] in text)
            ok &= shown
            print(f"mlflow ui: run {names[0]}: tag {key} = {tags.get(key)}: {'shown' if shown else 'MISSING'}")
        print(f"mlflow ui: screenshots {out / 'mlflow.png'}, {out / 'mlflow_run.png'}")
    finally:
        os.killpg(ui.pid, signal.SIGTERM)  # the server and its worker
        ui.wait()
    return ok


if __name__ == "__main__":
    sys.exit(main())
