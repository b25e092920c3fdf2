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


RESUME_ARGS = ["trainer.epochs=2", "regularizer=dropout", "regularizer.dropout.p=0.3", "augment=noise",
               "optimizer=momentum", "dataset.subset=128", "trainer.batch_size=8", "arch.width=[32]"]
RESUME_SCRIPT = textwrap.dedent("""
    import os, shutil, signal, sys, torch
    from pathlib import Path
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from trainlab.engine import distributed
    info = distributed.init("cpu")
    from conftest import run_tiny
    import trainlab.engine.checkpoint as ckpt
    import trainlab.engine.loop as loop_mod
    root, args = Path({root!r}), {args!r}

    first = {{}}  # the global torch RNG state (which dropout draws from) at the first training step, per rank
    step = loop_mod.Loop._step
    def recording(self, x, target):
        first.setdefault("rng", torch.get_rng_state())
        return step(self, x, target)
    loop_mod.Loop._step = recording
    run_tiny(root / "whole", args)
    loop_mod.Loop._step = step
    run_tiny(root / "split", [*args, "trainer.stop_after=1"])
    if info.is_main:
        shutil.copytree(root / "split", root / "negative")
    distributed.barrier()
    run_tiny(root / "split", [*args, "resume=true"])

    # SIGTERM reaches rank 1 alone, after its 3rd step: both ranks must stop after the same step,
    # the 4th with a vote after every step (they are spaced in time otherwise)
    distributed.FlagVote.EVERY_S = 0
    steps = [0]
    def signalled(self, x, target):
        out = step(self, x, target)
        steps[0] += 1
        if info.rank == 1 and steps[0] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return out
    loop_mod.Loop._step = signalled
    run_tiny(root / "signal", args)
    if info.is_main:
        shutil.copy(root / "signal" / "checkpoints" / "last.pt", root / "stopped.pt")
        shutil.copy(root / "signal" / "summary.json", root / "stopped.json")
    loop_mod.Loop._step = step
    run_tiny(root / "signal", [*args, "resume=true"])

    # negative control: every rank restores rank 0's RNG states (as before per-rank states were saved)
    ckpt.own_rank_state = lambda state, info: state["ranks"][0]
    run_tiny(root / "negative", [*args, "resume=true"])
    torch.save({{"dropout_rng": first["rng"]}}, root / f"rng_{{info.rank}}.pt")
""")


def test_two_ranks_with_dropout_stopped_and_resumed_equal_an_uninterrupted_run(tmp_path):
    """Each rank saves and restores its own dropout/augmentation RNG; ranks draw different masks;
    a signal that reaches one rank stops both after the same step."""
    from test_resume import assert_same_tensors, final_state, metrics_without_time

    script = RESUME_SCRIPT.format(tests=os.path.dirname(__file__), root=str(tmp_path), args=RESUME_ARGS)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29743",
                          "--no-python", sys.executable, "-c", script],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    whole = final_state(tmp_path / "whole")
    assert len(whole["ranks"]) == 2
    assert not torch.equal(whole["ranks"][0]["rng"]["torch"], whole["ranks"][1]["rng"]["torch"])
    rng = [torch.load(tmp_path / f"rng_{r}.pt")["dropout_rng"] for r in (0, 1)]
    assert not torch.equal(rng[0], rng[1])  # the ranks draw different dropout masks
    import json

    stopped = json.loads((tmp_path / "stopped.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["signal"] == "SIGTERM"  # rank 0 stopped with rank 1
    counters = torch.load(tmp_path / "stopped.pt", weights_only=True)["counters"]
    assert counters["step"] == 4 and counters["batch_in_epoch"] == 4  # mid-epoch: 8 steps of 2 x 8 examples
    for name in ("split", "signal"):
        state = final_state(tmp_path / name)
        for key in ("model", "optimizer", "data", "ranks"):
            assert_same_tensors(whole[key], state[key])
        assert metrics_without_time(tmp_path / name) == metrics_without_time(tmp_path / "whole")
    negative = final_state(tmp_path / "negative")["model"]
    assert any(not torch.equal(whole["model"][k], negative[k]) for k in negative)


def test_each_rank_restores_its_own_entry_and_another_world_size_warns(caplog):
    from trainlab.engine.checkpoint import own_rank_state
    from trainlab.engine.distributed import DistInfo

    ranks = [{"rng": "rank 0"}, {"rng": "rank 1"}]
    with caplog.at_level("WARNING", logger="trainlab"):
        assert own_rank_state({"ranks": ranks}, DistInfo(1, 2, 1)) == {"rng": "rank 1"}
        assert own_rank_state({"ranks": ranks}, DistInfo(0, 2, 0)) == {"rng": "rank 0"}
        assert own_rank_state({}, DistInfo(0, 1, 0)) is None  # a single process: the top-level states
    assert not caplog.records
    with caplog.at_level("WARNING", logger="trainlab"):
        assert own_rank_state({"ranks": ranks}, DistInfo(0, 3, 0)) == {"rng": "rank 0"}
        assert own_rank_state({}, DistInfo(0, 2, 0)) is None  # rank 1 will start a fresh stream
    assert [r.getMessage()[:38] for r in caplog.records] == ["checkpoint written by 2 process(es), r",
                                                             "checkpoint written by 1 process(es), r"]
