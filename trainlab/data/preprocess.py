"""Preprocessing by name (`preprocess=`), fitted on the training split only.

A Preprocessor is an nn.Module whose buffers are the fitted statistics: they
travel to the device with `.to()`, land in checkpoints through `state_dict()`,
and are applied unchanged to val and test batches. Inputs arrive as floats
(uint8 images already scaled to [0, 1]).
"""
from dataclasses import dataclass

import torch
from torch import nn

from trainlab.errors import check
from trainlab.registry import Registry

PREPROCESS = Registry("preprocess")

# Fitting PCA on every example of a large set buys nothing over a large sample.
MAX_FIT_EXAMPLES = 20000


@dataclass
class PreprocessSchema:
    name: str = "none"
    mode: str = "per_channel"   # center: scalar | per_channel | mean_image; standardize: per_channel | per_feature
    components: int | None = None  # pca / whiten: keep this many principal components (null = all)
    method: str = "zca"         # whiten: pca (rotated, k dims) or zca (rotated back to the input space)
    epsilon: float = 1e-2       # whiten / standardize: added to variances so near-zero directions don't explode
    whiten: bool = False        # pca: also divide each component by its standard deviation

    def __post_init__(self):
        modes = {"center": ("scalar", "per_channel", "mean_image"), "standardize": ("per_channel", "per_feature")}
        if self.name in modes:
            check(self.mode in modes[self.name], "mode", self.mode, "one of " + ", ".join(modes[self.name]))
        check(self.components is None or self.components >= 1, "components", self.components, "a positive count or null")
        check(self.method in ("pca", "zca"), "method", self.method, "one of pca, zca")
        check(self.epsilon >= 0, "epsilon", self.epsilon, "a non-negative number")


class Preprocessor(nn.Module):
    """Base: subclasses fill buffers in `fit` and transform in `forward`."""

    def __init__(self, cfg: PreprocessSchema, input_shape: tuple):
        super().__init__()
        self.cfg, self.input_shape = cfg, tuple(input_shape)

    def fit(self, x: torch.Tensor) -> "Preprocessor":
        return self

    def output_shape(self) -> tuple:
        return self.input_shape

    def forward(self, x):
        return x


def _channel_dims(x: torch.Tensor) -> list[int]:
    """Dims to reduce for per-channel statistics: all but channels for images, all but features otherwise."""
    return [0, 2, 3] if x.dim() == 4 else [0]


class Center(Preprocessor):
    def fit(self, x):
        if self.cfg.mode == "scalar":
            mean = x.mean().reshape(1)
        elif self.cfg.mode == "per_channel":
            mean = x.mean(dim=_channel_dims(x))
            mean = mean.view(-1, 1, 1) if x.dim() == 4 else mean
        else:
            mean = x.mean(dim=0)
        self.register_buffer("mean", mean)
        return self

    def forward(self, x):
        return x - self.mean


class Standardize(Preprocessor):
    def fit(self, x):
        dims = _channel_dims(x) if self.cfg.mode == "per_channel" else [0]
        mean, std = x.mean(dim=dims, keepdim=True)[0], x.std(dim=dims, keepdim=True)[0]
        self.register_buffer("mean", mean)
        # constant features (e.g. border pixels) have std 0; epsilon keeps them finite
        self.register_buffer("std", torch.sqrt(std**2 + self.cfg.epsilon**2))
        return self

    def forward(self, x):
        return (x - self.mean) / self.std


class MinMax(Preprocessor):
    """Scale each feature to [-1, 1] using the training min and max."""

    def fit(self, x):
        lo, hi = x.amin(dim=0), x.amax(dim=0)
        self.register_buffer("low", lo)
        self.register_buffer("range", torch.clamp(hi - lo, min=1e-8))
        return self

    def forward(self, x):
        return 2 * (x - self.low) / self.range - 1


class PCA(Preprocessor):
    """Center, rotate onto the top-k principal axes, optionally whiten (and rotate back: ZCA)."""

    zca = False

    def fit(self, x):
        flat = x.reshape(len(x), -1).double()
        if len(flat) > MAX_FIT_EXAMPLES:  # an evenly spaced sample: deterministic, train-only
            flat = flat[torch.linspace(0, len(flat) - 1, MAX_FIT_EXAMPLES).long()]
        mean = flat.mean(dim=0)
        cov = (flat - mean).T @ (flat - mean) / max(len(flat) - 1, 1)
        eigvals, eigvecs = torch.linalg.eigh(cov)  # ascending
        order = eigvals.flip(0).clamp(min=0), eigvecs.flip(1)
        k = min(self.cfg.components or flat.shape[1], flat.shape[1])
        vals, vecs = order[0][:k], order[1][:, :k]
        scale = 1 / torch.sqrt(vals + self.cfg.epsilon) if self._whitens() else torch.ones_like(vals)
        proj = vecs * scale  # (D, k): project and scale in one matmul
        if self.zca:
            proj = proj @ vecs.T  # back to the input space: (D, D)
        self.register_buffer("mean", mean.float())
        self.register_buffer("proj", proj.float())
        self.register_buffer("explained", (vals.sum() / order[0].sum().clamp(min=1e-12)).float().reshape(1))
        return self

    def _whitens(self) -> bool:
        return self.cfg.whiten

    def output_shape(self):
        return self.input_shape if self.zca else (self.proj.shape[1],)

    def forward(self, x):
        out = (x.reshape(len(x), -1) - self.mean) @ self.proj
        return out.reshape(len(x), *self.input_shape) if self.zca else out


class Whiten(PCA):
    def _whitens(self) -> bool:
        return True

    @property
    def zca(self):
        return self.cfg.method == "zca"


_KINDS = {"none": Preprocessor, "center": Center, "standardize": Standardize, "minmax": MinMax,
          "pca": PCA, "whiten": Whiten}
for _name, _cls in _KINDS.items():
    PREPROCESS.register(_name, PreprocessSchema)(lambda cfg, shape, _cls=_cls: _cls(cfg, shape))


def fit_preprocessor(cfg: PreprocessSchema, train_x: torch.Tensor) -> Preprocessor:
    """Fit on the TRAINING inputs only (as floats); the one place statistics are computed."""
    return PREPROCESS[cfg.name].build(cfg, tuple(train_x.shape[1:])).fit(to_float(train_x))


def restore_preprocessor(cfg: PreprocessSchema, input_shape: tuple, state: dict) -> Preprocessor:
    """Rebuild a fitted preprocessor from checkpointed statistics, without refitting."""
    pre = PREPROCESS[cfg.name].build(cfg, tuple(input_shape))
    for key, value in state.items():
        pre.register_buffer(key, value.clone())
    return pre


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images to [0, 1] floats; float data passes through."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
