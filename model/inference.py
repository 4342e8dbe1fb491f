"""Image in, focus result out: tiling, patches streamed through the model in batches, aggregation."""
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from . import metrics
from .constants import PATCH_SIZE
from .patches import BATCH_PATCHES, UNIFORM, batch_buffer, content_region, nothing_to_judge, patch_rows, rebatch
from .predictor import load_model
from .scaling import ImageError, check_plane, scale_factor
from .tiling import tile_grid


@dataclass(frozen=True)
class FocusResult:
    """Focus of one 2-D image, per patch and as a whole.

    Levels run from 0 (in focus) to 10 (about 30 px blur diameter); certainties
    from 0 (uniform distribution, e.g. empty background) to 1. Patches with
    nothing to judge (see :mod:`model.patches`) have a uniform distribution; when
    no patch has anything to judge, the levels are NaN and ``in_focus`` is False.

    Attributes
    ----------
    patch_origins : (P, 2) ndarray of int
        ``(row, col)`` of each patch's top-left pixel, row-major.
    patch_probabilities : (P, 11) ndarray
    patch_certainties : (P,) ndarray
    patch_empty : (P,) ndarray of bool
        Patches with nothing to judge (certainty 0).
    grid : (int, int)
        Patch rows and columns.
    image_shape : (int, int)
    """

    patch_origins: np.ndarray
    patch_probabilities: np.ndarray
    patch_certainties: np.ndarray
    patch_empty: np.ndarray
    grid: tuple
    image_shape: tuple

    @classmethod
    def from_patches(cls, origins, probabilities, grid, image_shape, empty=None):
        probabilities = np.asarray(probabilities, dtype=np.float64)
        empty = np.zeros(len(probabilities), bool) if empty is None else np.asarray(empty, bool)
        return cls(np.asarray(origins), probabilities, metrics.certainty(probabilities), empty,
                   tuple(grid), tuple(image_shape))

    @property
    def patch_levels(self):
        """Most probable level of each patch, ``(P,)`` (meaningless where ``patch_empty``)."""
        return self.patch_probabilities.argmax(axis=1)

    @property
    def patch_count(self):
        return len(self.patch_origins)

    @property
    def empty_patches(self):
        """Number of patches with nothing to judge."""
        return int(self.patch_empty.sum())

    @property
    def judged(self):
        """Whether any patch had something to judge."""
        return self.empty_patches < self.patch_count

    @cached_property
    def probabilities(self):
        """Whole-image distribution over the 11 levels (certainty-weighted mean)."""
        return metrics.aggregate(self.patch_probabilities, self.patch_certainties)

    @property
    def predicted_level(self):
        """Most probable level of the whole image, 0-10 (NaN if nothing could be judged)."""
        return int(self.probabilities.argmax()) if self.judged else float("nan")

    @property
    def expected_level(self):
        """Probability-weighted mean level: a continuous score, lower = sharper (NaN if nothing judged)."""
        return float(metrics.expected_level(self.probabilities)) if self.judged else float("nan")

    @property
    def in_focus(self):
        """At least half the whole-image probability on levels 0-2 (see metrics.in_focus)."""
        return self.judged and metrics.in_focus(self.probabilities)

    @cached_property
    def certainties(self):
        """Whole-image ``aggregate``, ``mean``, ``max`` and ``weighted`` certainties."""
        return metrics.image_certainties(self.patch_probabilities, self.patch_certainties)

    def summary(self):
        """The whole-image numbers as a flat dict (the CSV / table row)."""
        row = {"predicted_level": self.predicted_level,
               "expected_level": self.expected_level,
               "in_focus": self.in_focus}
        row.update({f"{name}_certainty": value for name, value in self.certainties.items()})
        row["patch_count"] = self.patch_count
        row["empty_patches"] = self.empty_patches
        row.update({f"probability_{k}": float(p) for k, p in enumerate(self.probabilities)})
        return row

    def patch_rows(self):
        """One dict per patch, generated: position, level (NaN if empty), certainty, ``empty``, 11 probabilities."""
        for i, ((r, c), p, empty) in enumerate(zip(self.patch_origins, self.patch_probabilities, self.patch_empty)):
            row = {"patch": i, "row": int(r), "col": int(c), "size": PATCH_SIZE,
                   "level": float("nan") if empty else int(p.argmax()),
                   "certainty": float(self.patch_certainties[i]), "empty": bool(empty)}
            row.update({f"probability_{k}": float(v) for k, v in enumerate(p)})
            yield row


def predict(image, *, n_rows=None, n_cols=None, max_value=None, model=None, batch_size=BATCH_PATCHES):
    """Assess the focus of one 2-D image.

    Parameters
    ----------
    image : (M, N) array_like
        Grayscale, at least 84x84; scaled by the rule in :mod:`model.scaling`.
        Only the rows the patches cover are read, band by band, so a memory
        map or :class:`model.image_files.LazyPlane` is never loaded whole.
    n_rows, n_cols : int, optional
        Number of patch rows / columns; default covers the image, the leftover
        pixels split evenly into the margins. Fewer patches are faster. Patches
        are laid over the image without its zero-filled margins
        (:func:`model.patches.content_region`).
    max_value : float, optional
        Override the intensity scale (see :func:`model.scaling.to_model_scale`).
    model : FocusModel or path, optional
        Default: the shipped model, loaded once per process. Anything with a
        ``predict_patches`` method works; it must not keep the array it is
        given, which is reused for the next call.
    batch_size : int
        Patches per model call; memory use grows with it, not with the image.

    Returns
    -------
    FocusResult

    Raises
    ------
    ImageError
        For input the model cannot assess (RGB, stacks, NaN, too small, ...).
        Values are checked on the pixels the patches cover.
    """
    image = check_plane(image)
    try:
        origins, grid = tile_grid(image.shape, n_rows, n_cols, region=content_region(image))
    except ValueError as exc:
        raise ImageError(str(exc)) from None
    if not hasattr(model, "predict_patches"):
        model = load_model(model)
    probabilities = np.tile(UNIFORM, (len(origins), 1))
    empty = np.zeros(len(origins), bool)
    scale = scale_factor(image.dtype, max_value)

    def to_judge():
        for at, patches in patch_rows(image, origins, max_value=max_value):
            screened = nothing_to_judge(patches, scale)
            empty[at] = screened
            keep = np.flatnonzero(~screened)
            yield at[keep], patches if len(keep) == len(patches) else patches[keep]

    # Judged patches are regrouped into full model calls: on a typical field most patches are
    # background, and a few large calls run faster than many small ones. Every call of this
    # thread reuses one buffer: fresh memory would cost page faults, image after image.
    buffer = batch_buffer(min(batch_size, len(origins)))
    for where, patches in rebatch(to_judge(), batch_size, scale=scale, out=buffer):
        probabilities[where] = model.predict_patches(patches)
    return FocusResult.from_patches(origins, probabilities, grid, image.shape, empty)


def predict_planes(planes, **kwargs):
    """Assess each plane of a z-stack or time series ``(P, M, N)``.

    Returns the list of :class:`FocusResult` and the index of the best-focused
    plane (see :func:`best_plane`). Keyword arguments go to :func:`predict`.
    """
    planes = np.asarray(planes)
    if planes.ndim != 3:
        raise ImageError(f"`planes` must be 3-D (plane, row, col), got shape {planes.shape}")
    results = [predict(plane, **kwargs) for plane in planes]
    return results, best_plane(results)


def best_plane(results):
    """Index of the sharpest plane: lowest expected level, ties to the higher certainty.

    Planes with nothing to judge are never picked; ``None`` if no plane had anything to judge.
    """
    judged = [i for i, r in enumerate(results) if r.judged]
    if not judged:
        return None
    return min(judged, key=lambda i: (round(results[i].expected_level, 6), -results[i].certainties["aggregate"]))


def best_in_series(keys, results):
    """For planes of several focal series: True for the sharpest of each series, False for the others.

    ``keys[i]`` names the series of ``results[i]`` (e.g. its channel and time point). A
    series of one plane has no sharpest plane: None.
    """
    series = {}
    for i, key in enumerate(keys):
        series.setdefault(key, []).append(i)
    marks = [None] * len(results)
    for members in series.values():
        if len(members) > 1:
            best = best_plane([results[i] for i in members])
            for j, i in enumerate(members):
                marks[i] = j == best
    return marks


__all__ = ["FocusResult", "predict", "predict_planes", "best_plane", "best_in_series"]
