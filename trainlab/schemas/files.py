"""Where the shipped configs live: the one fact both the schemas' YAML generator and the command
shell's composition need (no torch, no Hydra here)."""
import os
from pathlib import Path

CONFIG_NAME = "train"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # trainlab/


def conf_dir() -> Path:
    """The shipped configs: trainlab/conf in an installed wheel, else the checkout's top-level conf/."""
    for candidate in (PACKAGE_DIR / "conf", PACKAGE_DIR.parent / "conf"):
        if (candidate / f"{CONFIG_NAME}.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"trainlab's configs: neither {PACKAGE_DIR / 'conf'} nor {PACKAGE_DIR.parent / 'conf'} "
                            f"holds {CONFIG_NAME}.yaml")


def config_dirs() -> list[Path]:
    """The shipped configs plus the user's folders from TRAINLAB_CONFIG_PATH."""
    extra = [Path(p) for p in os.environ.get("TRAINLAB_CONFIG_PATH", "").split(os.pathsep) if p]
    return [conf_dir(), *extra]
