"""Preprocessing by name (`preprocess=`), fitted on the training split only.

A Preprocessor is an nn.Module whose buffers are the fitted statistics: they
travel to the device with `.to()`, land in checkpoints through `state_dict()`,
and are applied unchanged to val and test batches. Inputs arrive as floats
(uint8 images already scaled to [0, 1]). Every fit streams the training split
in chunks (sums and covariances accumulate), so a split that does not fit in
memory, an image folder read from disk, is fitted as exactly as one that does.
"""
from collections.abc import Iterable

import torch
from torch import nn

from trainlab.schemas.preprocess import PREPROCESS, CenterSchema, ComponentsBase, StandardizeSchema, WhitenSchema

# Fitting PCA on every example of a large set buys nothing over a large sample.
MAX_FIT_EXAMPLES = 20000
# Examples per chunk when statistics are streamed: bounded memory, whatever the split's size.
FIT_CHUNK = 1024


class RunningMoments:
    """Count, mean and sum of squared deviations of rows streamed in chunks, per column (or,
    with covariance=True, the full cross-product matrix). Chunks merge exactly (Chan et al.'s
    pairwise update) in float64, so a split streamed from disk fits the statistics the whole
    matrix would, without ever holding it."""

    def __init__(self, covariance: bool = False):
        self.covariance, self.n, self.mean, self.m2 = covariance, 0, None, None

    def update(self, rows: torch.Tensor) -> None:
        rows = rows.double()
        nb = len(rows)
        if nb == 0:
            return
        mean_b = rows.mean(dim=0)
        dev = rows - mean_b
        m2_b = dev.T @ dev if self.covariance else (dev * dev).sum(dim=0)
        if self.n == 0:
            self.n, self.mean, self.m2 = nb, mean_b, m2_b
            return
        n = self.n + nb
        delta = mean_b - self.mean
        spread = torch.outer(delta, delta) if self.covariance else delta * delta
        self.m2 = self.m2 + m2_b + spread * (self.n * nb / n)
        self.mean = self.mean + delta * (nb / n)
        self.n = n

    def variance(self) -> torch.Tensor:
        """Unbiased, as torch.std and torch.cov compute it."""
        return self.m2 / max(self.n - 1, 1)


def _rows(x: torch.Tensor, reduce: str) -> torch.Tensor:
    """A chunk as (rows, columns) for statistics over `reduce`: "all" (one scalar), "channel"
    (one per image channel; one per feature for flat inputs) or "example" (one per input element)."""
    if reduce == "all":
        return x.reshape(-1, 1)
    if reduce == "channel" and x.dim() == 4:
        return x.transpose(0, 1).reshape(x.shape[1], -1).T
    return x.reshape(len(x), -1)


def _stat_shape(input_shape: tuple, reduce: str) -> tuple:
    if reduce == "all":
        return (1,)
    if reduce == "channel" and len(input_shape) == 3:
        return (input_shape[0], 1, 1)  # broadcasts over (N, C, H, W)
    return tuple(input_shape)


class Preprocessor(nn.Module):
    """Base: subclasses fill buffers in `fit` (from chunks of training inputs) and transform in `forward`."""

    max_fit_examples: int | None = None  # fit on an evenly spaced sample of at most this many examples

    def __init__(self, cfg, input_shape: tuple):
        super().__init__()
        self.cfg, self.input_shape = cfg, tuple(input_shape)

    def fit(self, chunks: Iterable[torch.Tensor]) -> "Preprocessor":
        return self  # nothing to fit: the chunks are never read (nor, for files on disk, decoded)

    def moments(self, chunks, reduce: str, covariance: bool = False) -> RunningMoments:
        acc = RunningMoments(covariance)
        for chunk in chunks:
            acc.update(_rows(chunk, reduce))
        return acc

    def output_shape(self) -> tuple:
        return self.input_shape

    def forward(self, x):
        return x


class Center(Preprocessor):
    cfg: CenterSchema

    def fit(self, chunks):
        reduce = {"scalar": "all", "per_channel": "channel", "mean_image": "example"}[self.cfg.mode]
        mean = self.moments(chunks, reduce).mean
        self.register_buffer("mean", mean.float().reshape(_stat_shape(self.input_shape, reduce)))
        return self

    def forward(self, x):
        return x - self.mean


class Standardize(Preprocessor):
    cfg: StandardizeSchema

    def fit(self, chunks):
        reduce = "channel" if self.cfg.mode == "per_channel" else "example"
        acc = self.moments(chunks, reduce)
        shape = _stat_shape(self.input_shape, reduce)
        self.register_buffer("mean", acc.mean.float().reshape(shape))
        # constant features (e.g. border pixels) have std 0; epsilon keeps them finite
        self.register_buffer("std", torch.sqrt(acc.variance() + self.cfg.epsilon**2).float().reshape(shape))
        return self

    def forward(self, x):
        return (x - self.mean) / self.std


class MinMax(Preprocessor):
    """Scale each feature to [-1, 1] using the training min and max."""

    def fit(self, chunks):
        lo = hi = None
        for chunk in chunks:
            c_lo, c_hi = chunk.amin(dim=0), chunk.amax(dim=0)
            lo, hi = (c_lo, c_hi) if lo is None else (torch.minimum(lo, c_lo), torch.maximum(hi, c_hi))
        self.register_buffer("low", lo)
        self.register_buffer("range", torch.clamp(hi - lo, min=1e-8))
        return self

    def forward(self, x):
        return 2 * (x - self.low) / self.range - 1


class PCA(Preprocessor):
    """Center, rotate onto the top-k principal axes, optionally whiten (and rotate back: ZCA).
    The covariance accumulates chunk by chunk (a D x D matrix, never the N x D data)."""

    cfg: ComponentsBase  # PcaSchema here, WhitenSchema in the Whiten subclass
    zca = False
    max_fit_examples = MAX_FIT_EXAMPLES

    def fit(self, chunks):
        acc = self.moments(chunks, "example", covariance=True)
        mean, cov = acc.mean, acc.variance()
        eigvals, eigvecs = torch.linalg.eigh(cov)  # ascending
        order = eigvals.flip(0).clamp(min=0), eigvecs.flip(1)
        d = cov.shape[0]
        k = min(self.cfg.components or d, d)
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
    cfg: WhitenSchema

    def _whitens(self) -> bool:
        return True

    @property
    def zca(self):
        return self.cfg.method == "zca"


class Raw(Preprocessor):
    """Pixels on their 0-255 scale: images arrive as [0, 1] floats (to_float, or a dataset stored
    as fractions such as the digits' 0..16 / 16), so this undoes that scaling; nothing is fitted.
    The "standardized inputs train faster than raw ones" lesson needs the raw scale."""

    def __init__(self, cfg, input_shape: tuple):
        super().__init__(cfg, input_shape)
        self.scale = 255.0 if len(self.input_shape) == 3 else 1.0  # (C, H, W) images; flat features as they are

    def forward(self, x):
        return x * self.scale


KINDS = {"none": Preprocessor, "raw": Raw, "center": Center, "standardize": Standardize, "minmax": MinMax,
         "pca": PCA, "whiten": Whiten}


@PREPROCESS.builder(*KINDS)
def build_preprocessor(cfg, input_shape: tuple) -> Preprocessor:
    """An unfitted preprocessor of option `cfg.name` for inputs of `input_shape` (no batch dim)."""
    return KINDS[cfg.name](cfg, input_shape)


def fit_rows(n: int, limit: int | None, chunk: int = FIT_CHUNK) -> list[torch.Tensor]:
    """The training rows a fit reads, in chunks: all of them, or an evenly spaced sample
    (deterministic, train-only) when the preprocessor caps its fit at `limit` examples."""
    rows = torch.arange(n) if limit is None or n <= limit else torch.linspace(0, n - 1, limit).long()
    return list(rows.split(chunk))


def fit_preprocessor(cfg, train_x, read=None) -> Preprocessor:
    """Fit on the TRAINING inputs only (as floats); the one place statistics are computed.

    The inputs are streamed in chunks: `read(batches)` yields the inputs of each index batch
    (trainlab.data.loader.read_inputs decodes images on disk in workers); by default the
    tensor `train_x` is indexed. Chunks are read lazily, so `none` reads nothing.
    """
    pre = PREPROCESS[cfg.name].build(cfg, tuple(train_x.shape[1:]))
    batches = fit_rows(len(train_x), pre.max_fit_examples)
    chunks = read(batches) if read is not None else (train_x[rows] for rows in batches)
    return pre.fit(to_float(chunk) for chunk in chunks)


def restore_preprocessor(cfg, input_shape: tuple, state: dict) -> Preprocessor:
    """Rebuild a fitted preprocessor from checkpointed statistics, without refitting."""
    pre = PREPROCESS[cfg.name].build(cfg, tuple(input_shape))
    for key, value in state.items():
        pre.register_buffer(key, value.clone())
    return pre


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images to [0, 1] floats; float data passes through."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
