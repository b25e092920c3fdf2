"""DistributedDataParallel on CPU with gloo: 2 processes == 1 process with twice the per-rank batch."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import run_tiny

ARGS = ["optimizer=sgd", "optimizer.lr=0.1", "trainer.epochs=2", "dataset.subset=128", "arch.width=[32]"]
SCRIPT = textwrap.dedent("""
    import os, sys, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from trainlab.engine import distributed
    info = distributed.init("cpu")
    from conftest import run_tiny
    import trainlab.engine.loop as loop_mod
    seen = []
    original = loop_mod.Loop.train_epoch
    def recording(self, acc, *a, **k):
        if seen:  # the first epoch is enough
            return original(self, acc, *a, **k)
        # record which training examples (indices) this rank's slices of the first epoch hold
        from trainlab.data.batches import epoch_batches
        state = self.shuffle_gen.get_state()
        batches = epoch_batches(len(self.train_split.y), self.batch_size * self.dist.world, self.shuffle_gen)
        lo = self.dist.rank * self.batch_size
        seen.extend(int(i) for b in batches for i in b[lo:lo + self.batch_size])
        self.shuffle_gen.set_state(state)
        return original(self, acc, *a, **k)
    loop_mod.Loop.train_epoch = recording
    summary = run_tiny({run_dir!r}, {args!r})
    run = {run_dir!r}
    torch.save({{"seen": seen}}, os.path.join(run, f"seen_{{info.rank}}.pt"))
""")


def test_two_gloo_ranks_match_one_process_with_the_global_batch(tmp_path):
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    script = SCRIPT.format(tests=os.path.dirname(__file__), run_dir=str(ddp_dir), args=[*ARGS, "trainer.batch_size=8"])
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29731",
                          "--no-python", sys.executable, "-c", script],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    single = run_tiny(single_dir, [*ARGS, "trainer.batch_size=16"])
    ddp_state = torch.load(ddp_dir / "checkpoints" / "last.pt", weights_only=True)
    single_state = torch.load(single_dir / "checkpoints" / "last.pt", weights_only=True)
    for key, value in single_state["model"].items():
        assert torch.allclose(ddp_state["model"][key], value, atol=1e-6), key
    import json

    summary = json.loads((ddp_dir / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["status"] == "completed"
    assert summary["steps"] == single["steps"]
    # all-reduced metrics equal the single process's (the same examples, the same weights)
    assert summary["final"]["train_loss"] == pytest.approx(single["final"]["train_loss"], abs=1e-6)
    seen = [set(torch.load(ddp_dir / f"seen_{r}.pt")["seen"]) for r in (0, 1)]
    assert seen[0] and seen[1] and not seen[0] & seen[1]  # disjoint shards
    assert len(seen[0] | seen[1]) == 128  # together the whole (subset) training split


def test_torchrun_cli_makes_one_run_folder_written_by_rank_zero(tmp_path, cli_env):
    env = {k: v for k, v in cli_env.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29737",
                          "-m", "trainlab", "train", "trainer.epochs=1", "trainer.device=cpu", "dataset.subset=128",
                          "trainer.progress=plain"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    runs = list((tmp_path / "outputs" / "runs").iterdir())
    assert len(runs) == 1
    import json

    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2
    assert res.stdout.count("completed: results in") == 1  # rank 1 logs nothing
