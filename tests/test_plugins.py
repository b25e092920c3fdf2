"""A user's own architecture, registered from their own module and config folder."""
import json
import os
import subprocess
import sys
import textwrap


def test_user_registered_arch_trains(tmp_path, cli_env):
    (tmp_path / "myconf" / "arch").mkdir(parents=True)
    (tmp_path / "myconf" / "arch" / "tiny.yaml").write_text("name: tiny\nhidden: 24\n")
    (tmp_path / "mynets.py").write_text(textwrap.dedent('''
        import math
        from dataclasses import dataclass
        from torch import nn
        from trainlab.nn.archs import ARCHS

        @ARCHS.option("tiny", "A one-hidden-layer net from the user's own module.")
        @dataclass
        class TinySchema:
            name: str = "tiny"
            hidden: int = 32

        @ARCHS.builder("tiny")
        def build_tiny(cfg, parts, input_shape, num_classes):
            return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), cfg.hidden),
                                 *parts.after_layer(cfg.hidden, conv=False), nn.Linear(cfg.hidden, num_classes))
    '''))
    env = cli_env | {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), cli_env.get("PYTHONPATH")])),
                     "TRAINLAB_PLUGINS": "mynets", "TRAINLAB_CONFIG_PATH": str(tmp_path / "myconf")}
    res = subprocess.run([sys.executable, "-m", "trainlab", "train", "arch=tiny", "trainer.epochs=1",
                          "dataset.subset=100"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr
    run = next((tmp_path / "outputs" / "runs").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["num_params"] == 64 * 24 + 24 + 24 * 10 + 10
    bad = subprocess.run([sys.executable, "-m", "trainlab", "train", "arch=tiny", "arch.hiden=3"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=240)
    assert bad.returncode == 2 and "arch.hiden" in bad.stderr
