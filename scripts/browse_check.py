"""Open trainlab's tracker output the way a user does: `tensorboard --logdir` and `mlflow ui` on
localhost, looked at in headless Chromium (Debian's `chromium` package). Checks that a run's name
and a scalar appear, and saves screenshots.

    python scripts/browse_check.py [--out DIR]     # trains two tiny runs into DIR first

Exits 0 when every check passed; prints what it found. Needs .[trackers] and `chromium`.
"""
import argparse
import json
import shutil
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
    names = []
    for opt in ["adam", "momentum"]:
        run = out / "runs" / f"browse_{opt}"
        names.append(run.name)
        subprocess.run([sys.executable, "-m", "trainlab", "train", f"optimizer={opt}", "logger=[tensorboard,mlflow]",
                        f"logger.mlflow.tracking_uri=sqlite:///{out}/mlflow.db", "logger.mlflow.experiment=browse",
                        "trainer.epochs=4", "trainer.progress=off", f"hydra.run.dir={run}"],
                       cwd=ROOT, check=True, capture_output=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/browse_check"))
    parser.add_argument("--no-train", action="store_true", help="look at the runs an earlier call trained into --out")
    args = parser.parse_args()
    out = args.out.absolute()
    if args.no_train:
        names = sorted(p.name for p in (out / "runs").iterdir())
    else:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        names = train(out)
    bin_dir = Path(sys.executable).parent
    ok = True
    port = free_port()
    tb = subprocess.Popen([bin_dir / "tensorboard", "--logdir", out / "runs", "--host", "127.0.0.1", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        runs = wait_for(f"http://127.0.0.1:{port}/data/runs", timeout=120)
        print(f"tensorboard: /data/runs = {runs}")
        dom = browse(f"http://127.0.0.1:{port}/?runFilter=browse#timeseries", out / "tensorboard.png")
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
        hparams = {h["name"] for h in experiment["hparamInfos"]}
        metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
        found = {"optimizer", "seed", "trainer.epochs"} <= hparams and "hparam/test_acc" in metrics
        ok &= found
        print(f"tensorboard: HParams: columns optimizer, seed, trainer.epochs and metric hparam/test_acc: "
              f"{'shown' if found else 'MISSING'}; screenshot {out / 'tensorboard_hparams.png'}")
    finally:
        tb.terminate()
        tb.wait()
    from importlib.util import find_spec

    if find_spec("flask") is None:  # mlflow-skinny (the .[trackers] extra) has no UI server or web assets
        print("mlflow ui: skipped: it needs the full `mlflow` package (mlflow-skinny ships no UI)")
        return 0 if ok else 1
    port = free_port()
    ui = subprocess.Popen([bin_dir / "mlflow", "ui", "--backend-store-uri", f"sqlite:///{out}/mlflow.db",
                           "--host", "127.0.0.1", "--port", str(port)], cwd=out,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        api = wait_for(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=browse")
        exp_id = json.loads(api)["experiment"]["experiment_id"]
        dom = browse(f"http://127.0.0.1:{port}/#/experiments/{exp_id}", out / "mlflow.png", 20000)
        for name in names:
            found = name in dom
            ok &= found
            print(f"mlflow ui: run {name}: {'shown' if found else 'MISSING'}")
        print(f"mlflow ui: screenshot {out / 'mlflow.png'}")
    finally:
        ui.terminate()
        ui.wait()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
