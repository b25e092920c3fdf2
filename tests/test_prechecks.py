"""Issue 24 item 4, issue 25 items 15 and 17: every setting outside the job's schemas (the sweeper's,
the launcher's, the loggers', the environment, the dataset's files) is refused before any folder
exists: exit 2, exactly one line on stderr naming the key and the value, the working folder's tree
byte-identical. Each call is `trainlab ...` in-process (trainlab.app.cli.main) in a clean folder."""
import socket
from pathlib import Path

import pytest

from trainlab.app.cli import main

OPTUNA = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2"]
LR_RANGE = "optimizer.lr=tag(log,interval(0.01,0.1))"
TINY = ["trainer.epochs=1", "dataset.subset=120", "trainer.progress=off"]


def _closed_port() -> int:
    """A local port nobody listens on: a connect is refused at once, no network involved."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CLOSED = _closed_port()

# (the command line after `trainlab train`, the key the one line must name, the value it must show)
INVALID = [
    # trainlab's Optuna sweeper: its own options
    ([*OPTUNA, "hydra.sweeper.sampler=cmaes", LR_RANGE], "hydra.sweeper.sampler", "cmaes"),
    ([*OPTUNA, "hydra.sweeper.pruner=hyperband", LR_RANGE], "hydra.sweeper.pruner", "hyperband"),
    ([*OPTUNA, "hydra.sweeper.direction=sideways", LR_RANGE], "hydra.sweeper.direction", "sideways"),
    ([*OPTUNA, "hydra.sweeper.pruner_warmup=-1", LR_RANGE], "hydra.sweeper.pruner_warmup", "-1"),
    ([*OPTUNA, "hydra.sweeper.n_trials=1.5", LR_RANGE], "hydra.sweeper.n_trials", "1.5"),
    ([*OPTUNA, "hydra.sweeper.n_trials=0", LR_RANGE], "hydra.sweeper.n_trials", "0"),
    ([*OPTUNA, "hydra.sweeper.n_trials=-3", LR_RANGE], "hydra.sweeper.n_trials", "-3"),
    ([*OPTUNA, "hydra.sweeper.parallel_trials=0", LR_RANGE], "hydra.sweeper.parallel_trials", "0"),
    ([*OPTUNA, "hydra.sweeper.seed=-1", LR_RANGE], "hydra.sweeper.seed", "-1"),
    ([*OPTUNA, "hydra.sweeper.study_name=''", LR_RANGE], "hydra.sweeper.study_name", "''"),
    ([*OPTUNA, "+hydra.sweeper.trials=3", LR_RANGE], "hydra.sweeper.trials", "3"),
    # its storage URL and driver
    ([*OPTUNA, "hydra.sweeper.storage=notaurl", LR_RANGE], "hydra.sweeper.storage", "notaurl"),
    ([*OPTUNA, "hydra.sweeper.storage=sqlite:///{tmp}/missing/optuna.db", LR_RANGE], "hydra.sweeper.storage", "missing"),
    ([*OPTUNA, "hydra.sweeper.storage='postgresql://u@localhost/db'", LR_RANGE], "hydra.sweeper.storage", "postgresql"),
    ([*OPTUNA, "hydra.sweeper.storage='nosuchdb://u@localhost/db'", LR_RANGE], "hydra.sweeper.storage", "nosuchdb"),
    ([*OPTUNA, "hydra.sweeper.storage=journal:{tmp}/missing/study.journal", LR_RANGE], "hydra.sweeper.storage", "missing"),
    ([*OPTUNA, "hydra.sweeper.storage='sqlite://'", LR_RANGE], "hydra.sweeper.storage", "sqlite://"),
    # its objective, read by the table's metric parser
    ([*OPTUNA, "hydra.sweeper.objective=nosuch.metric", LR_RANGE], "hydra.sweeper.objective", "nosuch.metric"),
    ([*OPTUNA, "hydra.sweeper.objective=metrics:val_accuracy", LR_RANGE], "hydra.sweeper.objective", "val_accuracy"),
    ([*OPTUNA, "hydra.sweeper.objective='auc(nosuch)'", LR_RANGE], "hydra.sweeper.objective", "auc(nosuch)"),
    ([*OPTUNA, "hydra.sweeper.objective='epochs_to(val_acc>=1..2)'", LR_RANGE], "hydra.sweeper.objective", "1..2"),
    # its search space
    ([*OPTUNA, "optimizer.lr=interval(1,0.1)"], "optimizer.lr", "interval(1,0.1)"),
    ([*OPTUNA, "optimizer.lr=tag(log,interval(0,1))"], "optimizer.lr", "interval(0,1)"),
    ([*OPTUNA, "optimizer.lr=tag(log,interval(-1,1))"], "optimizer.lr", "interval(-1,1)"),
    ([*OPTUNA, "optimizer.lr=tag(loog,interval(0.01,0.1))"], "optimizer.lr", "loog"),
    ([*OPTUNA, "optimizer.lr=interval(-1,0.1)"], "optimizer.lr", "interval(-1,0.1)"),
    ([*OPTUNA, "regularizer=dropout", "regularizer.dropout.p=interval(0.5,1.5)"], "regularizer.dropout.p", "1.5"),
    ([*OPTUNA, "seed=0,1"], "hydra/sweeper", "optuna"),
    # trainlab's grid / random sweeper and Hydra's basic one
    (["-m", "seed=0,1", "hydra.sweeper.max_batch_size=0"], "hydra.sweeper.max_batch_size", "0"),
    (["-m", "seed=0,1", "hydra/sweeper=basic", "hydra.sweeper.max_batch_size=-1"], "hydra.sweeper.max_batch_size", "-1"),
    (["-m", "seed=0,1", "+hydra.sweeper.batch=2"], "hydra.sweeper.batch", "2"),
    (["-m", "seed=0,1", "hydra.sweeper.table.metrics=[nosuch.metric]"], "hydra.sweeper.table.metrics", "nosuch"),
    (["-m", "optimizer.lr=interval(0.01,0.1)", "hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials", "0"),
    (["-m", "optimizer.lr=interval(1,0.1)", "hydra.sweeper.n_trials=2"], "optimizer.lr", "interval(1,0.1)"),
    # launchers: basic, vectorized, joblib
    (["-m", "seed=0,1", "+hydra.launcher.jobs=2"], "hydra.launcher.jobs", "2"),
    (["-m", "seed=0,1", "hydra/launcher=vectorized", "+hydra.launcher.groups=2"], "hydra.launcher.groups", "2"),
    (["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0"], "hydra.launcher.n_jobs", "0"),
    (["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=two"], "hydra.launcher.n_jobs", "two"),
    (["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.prefer=gpus"], "hydra.launcher.prefer", "gpus"),
    (["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.require=all"], "hydra.launcher.require", "all"),
    (["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.batch_size=0"], "hydra.launcher.batch_size", "0"),
    (["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.pre_dispatch=lots"], "hydra.launcher.pre_dispatch", "lots"),
    (["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.max_nbytes=zz"], "hydra.launcher.max_nbytes", "zz"),
    (["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.timeout=-5"], "hydra.launcher.timeout", "-5"),
    (["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.mmap_mode=q"], "hydra.launcher.mmap_mode", "q"),
    (["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.verbose=-1"], "hydra.launcher.verbose", "-1"),
    (["-m", "seed=0,1", "hydra/launcher=joblib", "+hydra.launcher.workers=2"], "hydra.launcher.workers", "2"),
    # submitit: local and SLURM resources (SLURM's are checked before it says sbatch is missing)
    (["-m", "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=-1"], "hydra.launcher.cpus_per_task", "-1"),
    (["-m", "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=0"], "hydra.launcher.cpus_per_task", "0"),
    (["-m", "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1.5"], "hydra.launcher.cpus_per_task", "1.5"),
    (["-m", "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.mem_gb=0"], "hydra.launcher.mem_gb", "0"),
    (["-m", "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=0"], "hydra.launcher.timeout_min", "0"),
    (["-m", "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.gpus_per_node=-1"], "hydra.launcher.gpus_per_node", "-1"),
    (["-m", "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=0"], "hydra.launcher.tasks_per_node", "0"),
    (["-m", "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.nodes=0"], "hydra.launcher.nodes", "0"),
    (["-m", "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.partition=gpu"], "hydra.launcher.partition", "gpu"),
    (["-m", "seed=0,1", "hydra/launcher=slurm", "hydra.launcher.mem_gb=-4"], "hydra.launcher.mem_gb", "-4"),
    (["-m", "seed=0,1", "hydra/launcher=slurm", "hydra.launcher.array_parallelism=0"], "hydra.launcher.array_parallelism", "0"),
    (["-m", "seed=0,1", "hydra/launcher=slurm", "hydra.launcher.mem_per_cpu=lots"], "hydra.launcher.mem_per_cpu", "lots"),
    (["-m", "seed=0,1", "hydra/launcher=slurm", "hydra.launcher.setup=x"], "hydra.launcher.setup", "x"),
    # loggers: TensorBoard's and W&B's folders stay inside the run folder
    (["logger=tensorboard", "logger.tensorboard.dir=../../../x"], "logger.tensorboard.dir", "../../../x"),
    (["logger=tensorboard", "logger.tensorboard.dir=/tmp/tb_outside"], "logger.tensorboard.dir", "/tmp/tb_outside"),
    (["logger=tensorboard", "logger.tensorboard.dir=train.log"], "logger.tensorboard.dir", "train.log"),
    (["logger=tensorboard", "logger.tensorboard.dir=checkpoints/tb"], "logger.tensorboard.dir", "checkpoints/tb"),
    (["-m", "seed=0,1", "logger=tensorboard", "logger.tensorboard.dir=a/../../x"], "logger.tensorboard.dir", "a/../../x"),
    (["logger=wandb", "logger.wandb.dir=sub/../../x"], "logger.wandb.dir", "sub/../../x"),
    # W&B: mode, key, project
    (["logger=wandb", "logger.wandb.mode=online"], "logger.wandb.mode", "online"),
    (["-m", "seed=0,1", "logger=wandb", "logger.wandb.mode=online"], "logger.wandb.mode", "online"),
    (["logger=wandb", "logger.wandb.project=a/b"], "logger.wandb.project", "a/b"),
    (["logger=wandb", "logger.wandb.project=x:y"], "logger.wandb.project", "x:y"),
    # MLflow: the URI's scheme, its store's driver, its server
    (["logger=mlflow", "logger.mlflow.tracking_uri=notaurl"], "logger.mlflow.tracking_uri", "notaurl"),
    (["logger=mlflow", "logger.mlflow.tracking_uri='foo://x'"], "logger.mlflow.tracking_uri", "foo://x"),
    (["logger=mlflow", "logger.mlflow.tracking_uri='postgresql://u@localhost/db'"], "logger.mlflow.tracking_uri", "postgresql"),
    (["logger=mlflow", f"logger.mlflow.tracking_uri='http://127.0.0.1:{CLOSED}'"], "logger.mlflow.tracking_uri", str(CLOSED)),
    (["-m", "seed=0,1", "logger=mlflow", f"logger.mlflow.tracking_uri='http://127.0.0.1:{CLOSED}'"],
     "logger.mlflow.tracking_uri", str(CLOSED)),
    (["logger=mlflow", "logger.mlflow.tracking_uri='http://127.0.0.1:notaport'"], "logger.mlflow.tracking_uri", "notaport"),
]


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path below root with its bytes (None for a folder)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


@pytest.fixture
def clean(tmp_path, monkeypatch):
    """A clean working folder with an outputs/ tree, no W&B credentials, no server settings."""
    work = tmp_path / "work"
    (work / "outputs" / "runs").mkdir(parents=True)
    (work / "outputs" / "runs" / "README").write_text("kept as it is\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "no.netrc"))  # where wandb looks for `wandb login`'s key
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL", "MLFLOW_ALLOW_FILE_STORE",
                 "TRAINLAB_DATA", "TRAINLAB_CONFIG_PATH", "HYDRA_FULL_ERROR", "TRAINLAB_VERBOSE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(work)
    return work


def refused(work: Path, capsys, args: list[str]) -> str:
    """Run `trainlab ARGS`; assert exit 2, one stderr line, nothing created or changed; the line."""
    before = tree(work)
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert tree(work) == before
    return lines[0]


@pytest.mark.parametrize("args,key,value", INVALID, ids=[" ".join(a[-2:]) for a, _, _ in INVALID])
def test_invalid_sweeper_launcher_logger_setting(clean, capsys, args, key, value):
    args = [a.replace("{tmp}", str(clean.parent)) for a in args]
    line = refused(clean, capsys, ["train", *args, *TINY])
    assert line.startswith(f"error: {key}=") and value in line, line
    assert "is not valid: " in line


def test_the_table_holds_forty_cases():
    assert len(INVALID) >= 40
    assert {k.split(".")[0].split("/")[0] for _, k, _ in INVALID} >= {"hydra", "logger", "optimizer"}


# issue 25 item 15: the environment
@pytest.mark.parametrize("name,value", [("TRAINLAB_FIGURES", "sometimes"), ("TRAINLAB_CONFIG_PATH", "/nonexistent"),
                                        ("TRAINLAB_CONFIG_PATH", "somefile.py")])
def test_bad_environment_variable_is_one_line(clean, capsys, monkeypatch, name, value):
    (clean / "somefile.py").write_text("x = 1\n")
    monkeypatch.setenv(name, value)
    line = refused(clean, capsys, ["train", *TINY])
    assert line.startswith(f"error: {name}={value!r} is not valid"), line
    assert refused(clean, capsys, ["list", "optimizer"]).startswith(f"error: {name}=")


def test_good_environment_values_pass(clean, monkeypatch):
    (clean / "confs" / "arch").mkdir(parents=True)
    monkeypatch.setenv("TRAINLAB_CONFIG_PATH", str(clean / "confs"))
    for mode in ("wait", "inline", ""):
        monkeypatch.setenv("TRAINLAB_FIGURES", mode)
        from trainlab.app.prechecks.env import check_environment

        check_environment()


# issue 25 item 17: a dataset that is not there, decided once before any folder
@pytest.fixture
def no_network(monkeypatch):
    """The download host is unreachable; the probes are counted (the tests never touch the network)."""
    calls = []

    def unreachable(host: str) -> bool:
        calls.append(host)
        return False

    monkeypatch.setattr("trainlab.app.prechecks.datasets.host_reachable", unreachable)
    return calls


def test_missing_dataset_single_run_is_one_line(clean, capsys, no_network):
    line = refused(clean, capsys, ["train", "dataset=mnist", *TINY])
    assert "no mnist data there; set dataset.download=true" in line and "train-images-idx3-ubyte.gz" in line
    assert line.endswith(f"looked in {clean / 'data' / 'MNIST' / 'raw'} ($TRAINLAB_DATA is not set)"), line
    assert no_network == []  # download=false: the files decide, no probe


def test_missing_dataset_with_download_and_no_network_is_one_line(clean, capsys, no_network):
    """Before: the download was tried (and failed) inside the run: a failed run folder, exit 1."""
    line = refused(clean, capsys, ["train", "dataset=fashion_mnist", "dataset.download=true", *TINY])
    assert line.startswith(f"error: dataset.root='{clean / 'data'}' is not valid: no fashion_mnist data there and "
                           "its download host"), line
    assert f"into {clean / 'data' / 'FashionMNIST' / 'raw'} (dataset.download=true extracts them offline)" in line
    assert no_network == ["fashion-mnist.s3-website.eu-central-1.amazonaws.com"]


def test_missing_dataset_preset_sweep_decided_once(clean, capsys, monkeypatch, no_network):
    empty = clean.parent / "nodata"
    empty.mkdir()
    monkeypatch.setenv("TRAINLAB_DATA", str(empty))
    line = refused(clean, capsys, ["train", "-m", "experiment=activations"])
    assert line.startswith(f"error: dataset.root='{empty}'") and "(from $TRAINLAB_DATA)" in line, line
    assert "download host ossci-datasets.s3.amazonaws.com cannot be reached" in line
    assert line.endswith(f"looked in {empty / 'MNIST' / 'raw'} (from $TRAINLAB_DATA)"), line
    assert no_network == ["ossci-datasets.s3.amazonaws.com"]  # once for the 15 jobs


def test_dataset_archives_present_pass_the_precheck(clean, data_root, no_network):
    from trainlab.app.precheck import precheck

    assert precheck(["dataset=mnist", f"dataset.root={data_root}", "dataset.download=true"]) == 1
    assert precheck(["-m", "dataset=fashion_mnist", f"dataset.root={data_root}", "dataset.download=true",
                     "seed=0,1"]) == 2
    assert no_network == []
    assert not (clean / "outputs" / "sweeps").exists()


# valid settings still pass the precheck, and a tiny sweep with several of them runs
VALID = [
    [*OPTUNA, "hydra.sweeper.objective=metrics:val_acc", "hydra.sweeper.sampler=random", "hydra.sweeper.pruner=none",
     "hydra.sweeper.direction=maximize", "hydra.sweeper.storage=sqlite:///{tmp}/study.db", LR_RANGE],
    [*OPTUNA, "hydra.sweeper.objective='epochs_to(val_acc>=90)'", "hydra.sweeper.parallel_trials=2", LR_RANGE],
    [*OPTUNA, "hydra.sweeper.objective=test.ema_acc", "optimizer.lr=interval(0.01,0.1)", "seed=0,1"],
    ["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=-1", "hydra.launcher.pre_dispatch=all"],
    ["-m", "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=2", "hydra.launcher.mem_gb=4"],
    ["-m", "seed=0,1", "hydra.sweeper.max_batch_size=1", "hydra.sweeper.table.metrics=[best.val_acc,gap]"],
    ["logger=[tensorboard,wandb]", "logger.tensorboard.dir=tb/sub", "logger.wandb.project=my project"],
    ["logger=mlflow", "logger.mlflow.tracking_uri=sqlite:///{tmp}/new/folder/mlflow.db"],
]


@pytest.mark.parametrize("args", VALID, ids=[" ".join(a[-2:]) for a in VALID])
def test_valid_settings_pass_the_precheck(clean, args):
    from trainlab.app.precheck import precheck

    assert precheck([a.replace("{tmp}", str(clean.parent)) for a in args]) >= 1
    assert not (clean / "outputs" / "sweeps").exists()


def test_valid_settings_still_run(clean, capsys):
    """A tiny run with a TensorBoard folder nested inside its run folder trains and writes there (the
    sweepers' and launchers' valid settings run in test_optuna.py, test_launchers.py, test_sweeps.py)."""
    code = main(["train", "logger=tensorboard", "logger.tensorboard.dir=tb/sub", "hydra.run.dir=outputs/runs/tb",
                 *TINY])
    assert code == 0, capsys.readouterr().err
    run = clean / "outputs" / "runs" / "tb"
    assert (run / "summary.json").is_file() and any((run / "tb" / "sub").iterdir())


def test_tensorboard_folder_that_is_a_file_in_an_existing_run_folder(clean, capsys):
    """The run folder exists (here an empty one named by hydra.run.dir; a resumed run's): a tracker's
    folder there that is a file, or that this user cannot write, is refused before the run starts."""
    run = clean / "outputs" / "runs" / "given"
    run.mkdir()
    (run / "tb").write_text("not a folder\n")
    line = refused(clean, capsys, ["train", "logger=tensorboard", "logger.tensorboard.dir=tb/events",
                                   f"hydra.run.dir={run}", *TINY])
    assert line.startswith("error: logger.tensorboard.dir='tb/events' is not valid: a folder (") and "is a file" in line


def _serve(status: int, body: bytes):
    """A local HTTP server answering every GET with `status` and `body` (no network involved)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_mlflow_uri_of_a_server_that_is_not_mlflow_is_refused(clean, capsys):
    """A port that accepts connections but is no MLflow server (a proxy, another web server): before,
    every run of the sweep failed against it; MLflow's own 404 (an unknown experiment) is accepted."""
    from trainlab.app.precheck import precheck

    other = _serve(404, b"<html>not found</html>")
    mlflow_like = _serve(404, b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no experiment Default"}')
    try:
        uri = f"http://127.0.0.1:{other.server_address[1]}"
        line = refused(clean, capsys, ["train", "-m", "seed=0,1", "logger=mlflow",
                                       f"logger.mlflow.tracking_uri='{uri}'", *TINY])
        assert line.startswith(f"error: logger.mlflow.tracking_uri='{uri}' is not valid: the address of an MLflow "
                               "tracking server"), line
        assert "HTTP 404" in line
        good = f"http://127.0.0.1:{mlflow_like.server_address[1]}"
        assert precheck(["logger=mlflow", f"logger.mlflow.tracking_uri='{good}'"]) == 1
    finally:
        other.shutdown()
        mlflow_like.shutdown()
