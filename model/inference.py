"""Image in, focus result out: tiling, one batched model call, aggregation."""
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from . import metrics
from .constants import PATCH_SIZE
from .predictor import load_model
from .scaling import ImageError, check_plane, scale_checked
from .tiling import mosaic, tile_grid


@dataclass(frozen=True)
class FocusResult:
    """Focus of one 2-D image, per patch and as a whole.

    Levels run from 0 (in focus) to 10 (about 30 px blur diameter); certainties
    from 0 (uniform distribution, e.g. empty background) to 1.

    Attributes
    ----------
    patch_origins : (P, 2) ndarray of int
        ``(row, col)`` of each patch's top-left pixel, row-major.
    patch_probabilities : (P, 11) ndarray
    patch_certainties : (P,) ndarray
    grid : (int, int)
        Patch rows and columns.
    image_shape : (int, int)
    """

    patch_origins: np.ndarray
    patch_probabilities: np.ndarray
    patch_certainties: np.ndarray
    grid: tuple
    image_shape: tuple

    @classmethod
    def from_patches(cls, origins, probabilities, grid, image_shape):
        probabilities = np.asarray(probabilities, dtype=np.float64)
        return cls(np.asarray(origins), probabilities, metrics.certainty(probabilities),
                   tuple(grid), tuple(image_shape))

    @property
    def patch_levels(self):
        """Most probable level of each patch, ``(P,)``."""
        return self.patch_probabilities.argmax(axis=1)

    @property
    def patch_count(self):
        return len(self.patch_origins)

    @cached_property
    def probabilities(self):
        """Whole-image distribution over the 11 levels (certainty-weighted mean)."""
        return metrics.aggregate(self.patch_probabilities, self.patch_certainties)

    @property
    def predicted_level(self):
        """Most probable level of the whole image, 0-10."""
        return int(self.probabilities.argmax())

    @property
    def expected_level(self):
        """Probability-weighted mean level: a continuous score, lower = sharper."""
        return float(metrics.expected_level(self.probabilities))

    @property
    def in_focus(self):
        """At least half the whole-image probability on levels 0-2 (see metrics.in_focus)."""
        return metrics.in_focus(self.probabilities)

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
        row.update({f"probability_{k}": float(p) for k, p in enumerate(self.probabilities)})
        return row

    def patch_table(self):
        """One dict per patch: position, level, certainty and the 11 probabilities."""
        rows = []
        for i, ((r, c), p) in enumerate(zip(self.patch_origins, self.patch_probabilities)):
            row = {"patch": i, "row": int(r), "col": int(c), "size": PATCH_SIZE,
                   "level": int(p.argmax()), "certainty": float(self.patch_certainties[i])}
            row.update({f"probability_{k}": float(v) for k, v in enumerate(p)})
            rows.append(row)
        return rows


def predict(image, *, n_rows=None, n_cols=None, max_value=None, model=None):
    """Assess the focus of one 2-D image.

    Parameters
    ----------
    image : (M, N) array_like
        Grayscale, at least 84x84; scaled by the rule in :mod:`model.scaling`.
    n_rows, n_cols : int, optional
        Number of patch rows / columns; default covers the image, the leftover
        pixels split evenly into the margins. Fewer patches are faster.
    max_value : float, optional
        Override the intensity scale (see :func:`model.scaling.to_model_scale`).
    model : FocusModel or path, optional
        Default: the shipped model, loaded once per process.

    Returns
    -------
    FocusResult

    Raises
    ------
    ImageError
        For input the model cannot assess (RGB, stacks, NaN, too small, ...).
        The intensity range is checked on the pixels the patches cover.
    """
    image = check_plane(image)
    try:
        origins, grid = tile_grid(image.shape, n_rows, n_cols)
    except ValueError as exc:
        raise ImageError(str(exc)) from None
    # Scale only the pixels the model sees: the patches, packed into one mosaic.
    scaled = scale_checked(mosaic(image, origins, grid), max_value=max_value)
    if not hasattr(model, "predict_mosaic"):
        model = load_model(model)
    probabilities = model.predict_mosaic(scaled)
    if len(probabilities) != len(origins):
        raise ImageError(f"the model returned {len(probabilities)} patches for {len(origins)}")
    return FocusResult.from_patches(origins, probabilities, grid, image.shape)


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
    """Index of the sharpest plane: lowest expected level, ties to the higher certainty."""
    keys = [(round(r.expected_level, 6), -r.certainties["aggregate"]) for r in results]
    return min(range(len(results)), key=keys.__getitem__)


__all__ = ["FocusResult", "predict", "predict_planes", "best_plane"]
