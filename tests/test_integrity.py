"""Checkpoint integrity: a sha256 sealed into every checkpoint and verified by every loader; files that
are not trainlab checkpoints; rebuilding a run's model from its own config (ensemble with dropout);
a full disk; the timed last.pt cadence."""
import errno
import json
import zipfile

import pytest
import torch

from conftest import run_tiny, train_in
from trainlab.app.cli import main
from trainlab.engine import checkpoint as ckpt
from trainlab.errors import ConfigError, FileError

STOPPED = ["trainer.epochs=2", "trainer.stop_after=1", "regularizer=dropout", "regularizer.dropout.p=0.2"]


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A run folder as `trainlab train` leaves it, stopped after epoch 1 of 2 (resumable), with dropout."""
    root = tmp_path_factory.mktemp("stopped")
    train_in(root, [*STOPPED, "dataset.subset=120", "trainer.batch_size=32", "trainer.progress=off",
                    f"hydra.run.dir={root / 'run'}"])
    return root / "run"


def flip(path, offset, bit=0):
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def places(path):
    """Byte offsets in different parts of a sealed checkpoint: tensor data, the pickle, zip headers,
    the central directory, the end record, and the digest itself."""
    size = path.stat().st_size
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        pickle_info = next(i for i in infos if i.filename.endswith("data.pkl"))
        tensors = sorted((i for i in infos if "/data/" in i.filename), key=lambda i: -i.file_size)
    start = lambda info: info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)  # noqa: E731
    big = tensors[0]  # the largest tensor: a weight matrix
    return {
        "weight data": start(big) + big.file_size // 2,
        "weight data, last byte": start(big) + big.file_size - 1,
        "another tensor": start(tensors[-1]),
        "pickle": start(pickle_info) + pickle_info.file_size // 2,
        "local header": big.header_offset + 14,  # its CRC field
        "central directory": size - 102 - 30,
        "end record": size - 102 + 10,
        "digest": size - 10,
        "digest tag": size - 75,
    }


def test_sealed_checkpoint_is_still_a_plain_torch_zip(stopped_run):
    last = stopped_run / "checkpoints" / "last.pt"
    assert last.read_bytes()[-80:].startswith(b"trainlab-sha256:")
    assert zipfile.ZipFile(last).testzip() is None
    assert "model" in torch.load(last, weights_only=True)  # any torch reads it as before
    assert ckpt.load(last)["counters"]["epoch"] == 1


def test_a_bit_flipped_anywhere_is_refused_naming_the_file(stopped_run):
    last = stopped_run / "checkpoints" / "last.pt"
    good = last.read_bytes()
    refused = []
    try:
        for where, offset in places(last).items():
            for bit in (0, 7):
                flip(last, offset, bit)
                with pytest.raises(FileError) as err:
                    ckpt.load(last)
                message = str(err.value)
                assert str(last) in message and len(message.splitlines()) == 1 and "\x1b" not in message, where
                refused.append(where)
                last.write_bytes(good)
    finally:
        last.write_bytes(good)
    assert len(refused) == 18


def test_the_issue_case_one_bit_in_100_floats_of_a_weight(stopped_run, tmp_path, monkeypatch, capsys):
    """A bit flipped in 100 floats of a weight: `trainlab resume` and transfer.weights both refuse it."""
    run = tmp_path / "run"
    import shutil

    shutil.copytree(stopped_run, run)
    last = run / "checkpoints" / "last.pt"
    with zipfile.ZipFile(last) as zf:
        big = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(last.read_bytes())
    start = big.header_offset + 30 + len(big.filename.encode()) + len(big.extra)
    for k in range(100):
        data[start + 4 * k + 1] ^= 0x04  # a mantissa bit of float k
    last.write_bytes(bytes(data))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    monkeypatch.chdir(tmp_path)
    assert main(["resume", str(run), "trainer.progress=off"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"error: {last}: damaged checkpoint: its content does not match the sha256 digest "
                                "written with it (changed on disk or in a copy); use best.pt or a snapshot, or train again"]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    with pytest.raises(FileError, match="damaged checkpoint"):
        run_tiny(tmp_path / "transfer", [f"transfer.weights={last}"])


def test_files_that_are_not_trainlab_checkpoints(tmp_path):
    cases = {"list.pt": [1, 2, 3], "str_model.pt": {"model": "str"}, "empty_dict.pt": {}}
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
    (tmp_path / "text.pt").write_text("epoch 3 done\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in [*cases, "text.pt", "empty.pt"]:
        with pytest.raises(FileError) as err:
            ckpt.load(tmp_path / name)
        assert str(err.value).startswith(f"{tmp_path / name}: not a trainlab checkpoint"), str(err.value)
        assert "\n" not in str(err.value)
    # a plain state dict is not a run checkpoint, but transfer.weights takes it
    torch.save({"1.weight": torch.zeros(3, 4)}, tmp_path / "plain.pt")
    with pytest.raises(FileError, match="not a trainlab checkpoint"):
        ckpt.load(tmp_path / "plain.pt")
    assert set(ckpt.load(tmp_path / "plain.pt", plain_ok=True)) == {"1.weight"}


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_hostile_pickle_is_one_plain_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"model": Evil(), "config": {}, "preprocess": {}}, tmp_path / "evil.pt")
    with pytest.raises(FileError) as err:
        ckpt.load(tmp_path / "evil.pt")
    message = str(err.value)
    assert message == f"{tmp_path / 'evil.pt'}: not a trainlab checkpoint: it holds pickled code (posix.system), " \
                      "which trainlab does not run"
    assert not (tmp_path / "PWNED").exists()


def test_resume_of_a_foreign_last_pt_is_one_line(stopped_run, tmp_path, monkeypatch, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    torch.save([1, 2, 3], run / "checkpoints" / "last.pt")
    monkeypatch.chdir(tmp_path)
    assert main(["resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {run / 'checkpoints' / 'last.pt'}: not a trainlab checkpoint (it holds a list)"


def test_checkpoint_without_a_digest_still_loads_with_a_warning(stopped_run, tmp_path, caplog):
    state = ckpt.load(stopped_run / "checkpoints" / "last.pt")
    torch.save(state, tmp_path / "old.pt")  # as trainlab wrote it before checkpoints were sealed
    with caplog.at_level("WARNING", logger="trainlab"):
        assert ckpt.load(tmp_path / "old.pt")["counters"]["epoch"] == 1
    assert "no integrity digest" in caplog.text


def test_ensemble_and_transfer_of_a_run_trained_with_dropout(stopped_run, tmp_path, capsys):
    """The model is rebuilt from the run's own config (dropout layers included): no missing keys."""
    import shutil

    run = tmp_path / "drop"
    shutil.copytree(stopped_run, run)
    assert main(["resume", str(run), "trainer.progress=off"]) == 0
    capsys.readouterr()
    assert main(["ensemble", str(run)]) == 0, capsys.readouterr().err
    assert "ensemble of 1" in capsys.readouterr().out
    # a model without dropout has other layer indices: the tensors are matched in order, all loaded
    best = run / "checkpoints" / "best.pt"
    s = run_tiny(tmp_path / "plain", [f"transfer.weights={best}", "transfer.freeze=[backbone]", "trainer.epochs=1"])
    assert s["status"] == "completed"
    source = ckpt.load(best)["model"]
    mine = ckpt.load(tmp_path / "plain" / "checkpoints" / "last.pt")["model"]
    assert [k for k in source if k not in mine]  # the names differ ...
    for (_, a), (_, b) in zip(list(source.items())[:-2], list(mine.items())[:-2], strict=True):
        assert torch.equal(a, b)  # ... the frozen backbone is the source's, tensor by tensor


def test_freezing_a_backbone_that_was_not_loaded_is_refused(stopped_run, tmp_path):
    best = stopped_run / "checkpoints" / "best.pt"
    with pytest.raises(ConfigError, match="transfer.freeze.*fresh initialization"):
        run_tiny(tmp_path / "x", [f"transfer.weights={best}", "transfer.freeze=[backbone]", "arch.width=[32,32]"])


class FullDisk:
    """A file whose writes fail with ENOSPC after `room` bytes, as on a full disk."""

    def __init__(self, fh, room):
        self.fh, self.room = fh, room

    def write(self, data):
        self.room -= len(data)
        if self.room < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


def test_disk_full_is_one_line_naming_the_file_and_the_run_resumes(stopped_run, tmp_path, monkeypatch, capsys):
    import builtins
    import shutil

    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    last = run / "checkpoints" / "last.pt"
    good = last.read_bytes()

    def full_open(path, mode="r", *a, **k):
        fh = builtins.open(path, mode, *a, **k)
        return FullDisk(fh, 5000) if ".tmp-" in str(path) else fh

    monkeypatch.setattr(ckpt, "open", full_open, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["resume", str(run), "trainer.progress=off"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: no space left on device while writing {run / 'checkpoints'}/")
    assert "Traceback" not in "\n".join(err) and "unexpected pos" not in "\n".join(err)
    assert last.read_bytes() == good and not list(last.parent.glob(".*.tmp-*"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "no space left on device while writing" in summary["error"]
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert main(["resume", str(run), "trainer.progress=off"]) == 0  # space freed: it continues
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


def test_timed_checkpoints_mid_epoch_leave_the_run_bit_identical(tmp_path, monkeypatch):
    from test_resume import assert_same_tensors, final_state, metrics_without_time

    args = ["trainer.epochs=2", "regularizer=dropout", "augment=[flip,noise]", "optimizer=momentum",
            "dataset.subset=160", "trainer.batch_size=16"]
    saves = []
    original = ckpt.save_atomic

    def counting(obj, path):
        if path.name == "last.pt":
            saves.append(obj["counters"]["batch_in_epoch"])
        return original(obj, path)

    run_tiny(tmp_path / "plain", args)
    monkeypatch.setattr(ckpt, "save_atomic", counting)
    timed = run_tiny(tmp_path / "timed", [*args, "trainer.checkpoint_every_minutes=1e-9"])  # due after every step
    assert timed["status"] == "completed"
    assert saves.count(0) == 2 and sorted(set(saves) - {0}) == list(range(1, 10))  # 9 mid-epoch saves per epoch
    assert_same_tensors(final_state(tmp_path / "plain")["model"], final_state(tmp_path / "timed")["model"])
    assert metrics_without_time(tmp_path / "plain") == metrics_without_time(tmp_path / "timed")


def test_stopped_mid_epoch_resumed_with_timed_checkpoints_is_bit_identical(tmp_path, monkeypatch):
    """A run resumed mid-epoch keeps the epoch's starting data order for its next mid-epoch checkpoint
    (found by killing runs with timed checkpoints: the resumed epoch's next save had none)."""
    import os
    import signal

    from test_resume import assert_same_tensors, final_state, metrics_without_time
    from trainlab.engine import loop

    args = ["trainer.epochs=2", "regularizer=dropout", "optimizer=momentum", "dataset.subset=96",
            "trainer.batch_size=16"]
    run_tiny(tmp_path / "whole", args)
    args.append("trainer.checkpoint_every_minutes=1e-9")  # a timed last.pt after every step
    steps, original = [0], loop.Loop._step

    def stop_at_step_9(self, x, target):
        steps[0] += 1
        if steps[0] == 9:  # mid-epoch 2 (6 steps an epoch): the run saves after this step, `interrupted`
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, x, target)

    with monkeypatch.context() as m:
        m.setattr(loop.Loop, "_step", stop_at_step_9)
        assert run_tiny(tmp_path / "split", args)["status"] == "interrupted"
    assert ckpt.load(tmp_path / "split" / "checkpoints" / "last.pt")["counters"]["batch_in_epoch"] == 3
    assert run_tiny(tmp_path / "split", [*args, "resume=true"])["status"] == "completed"
    assert_same_tensors(final_state(tmp_path / "whole")["model"], final_state(tmp_path / "split")["model"])
    assert metrics_without_time(tmp_path / "whole") == metrics_without_time(tmp_path / "split")


@pytest.mark.parametrize("level", ["light", "full"])
def test_a_mid_epoch_resume_reports_the_interrupted_epochs_diagnostics_unchanged(tmp_path, monkeypatch, level):
    """Live diagnostics' sums since the last evaluation are in last.pt: after a stop mid-epoch and a
    resume, every diag/* column equals the uninterrupted run's (they differed: the sums restarted)."""
    import csv
    import os
    import signal

    from trainlab.engine import loop

    args = ["trainer.epochs=2", "optimizer=momentum", "dataset.subset=96", "trainer.batch_size=16",
            f"trainer.diagnostics={level}", "trainer.diagnostics_every=2"]
    run_tiny(tmp_path / "whole", args)
    steps, original = [0], loop.Loop._step

    def stop_at_step_9(self, x, target):
        steps[0] += 1
        if steps[0] == 9:  # mid-epoch 2: samples at steps 6 and 8 of the epoch are already summed
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, x, target)

    with monkeypatch.context() as m:
        m.setattr(loop.Loop, "_step", stop_at_step_9)
        assert run_tiny(tmp_path / "split", args)["status"] == "interrupted"
    assert run_tiny(tmp_path / "split", [*args, "resume=true"])["status"] == "completed"

    def diag_columns(run_dir):
        with open(run_dir / "metrics.csv") as fh:
            return [{k: v for k, v in row.items() if k.startswith("diag/")} for row in csv.DictReader(fh)]

    whole = diag_columns(tmp_path / "whole")
    assert whole[-1] and all(v not in ("", "nan") for v in whole[-1].values())
    assert diag_columns(tmp_path / "split") == whole
