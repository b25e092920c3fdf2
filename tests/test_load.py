"""Under load: a 50-job sweep with failing and diverging jobs finishes the rest, marks them, and does not leak."""
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_fifty_job_sweep(tmp_path, cli_env):
    args = ["train", "-m", "norm=groupnorm", "norm.groups=1,2,4,8,7", "optimizer=sgd",
            "optimizer.lr=0.1,0.05,0.03,0.02,1e6", "seed=0,1", "init=normal", "init.std=1.0",
            "dataset.subset=100", "trainer.batch_size=16", "trainer.epochs=1", "trainer.progress=off",
            "trainer.save_checkpoints=false"]
    res = subprocess.run([sys.executable, "-m", "trainlab", *args], cwd=tmp_path, env=cli_env, capture_output=True,
                         text=True, timeout=1500)
    assert res.returncode != 0  # groups=7 cannot divide the 256-unit layers: those jobs fail
    sweep = next((tmp_path / "outputs" / "sweeps").iterdir())
    jobs = sorted((p for p in sweep.iterdir() if p.is_dir()), key=lambda p: int(p.name.split("_")[0]))
    assert len(jobs) == 50
    summaries = [json.loads((j / "summary.json").read_text()) for j in jobs]
    statuses = [s["status"] for s in summaries]
    assert statuses.count("failed") == 10
    assert statuses.count("diverged") == 8
    assert statuses.count("completed") == 32
    table = (sweep / "table.md").read_text()
    assert "failed" in table and "diverged" in table
    peaks = [s["peak_rss_mb"] for s in summaries if s.get("peak_rss_mb")]
    print(f"peak RSS after the first measured job {peaks[0]} MB, after the last {peaks[-1]} MB")
    assert peaks[-1] <= peaks[len(peaks) // 5] * 1.10 + 20  # flat after warm-up: no growth per job
