"""Certainty and whole-image aggregation of per-patch probabilities.

Formulas as in Yang et al. 2018 and the original ``evaluation.py``: a patch's
certainty is one minus its normalised entropy, and the whole-image distribution
is the certainty-weighted mean of the patch distributions.

References
----------
.. [1] Yang SJ et al. (2018) Assessing microscope image focus quality with deep
   learning. BMC Bioinformatics 19:77. https://doi.org/10.1186/s12859-018-2087-4
"""
import numpy as np

from .constants import IN_FOCUS_MAX_LEVEL


def certainty(probabilities):
    """Certainty of one or more distributions: ``1 - H(p) / ln K``.

    Parameters
    ----------
    probabilities : (..., K) array_like
        Non-negative class probabilities (renormalised to sum 1).

    Returns
    -------
    certainty : ndarray, shape ``(...)``, in [0, 1]
        0 for a uniform distribution, 1 for a one-hot one; 0 where all p are 0.

    Examples
    --------
    >>> round(float(certainty([0, 0.2, 0.8])), 3)
    0.545
    """
    p = np.asarray(probabilities, dtype=np.float64)
    total = p.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(total > 0, p / total, 0.0)
        plogp = np.where(q > 0, q * np.log(q), 0.0)
    entropy = -plogp.sum(axis=-1)
    c = 1.0 - entropy / np.log(p.shape[-1])
    return np.clip(np.where(total[..., 0] > 0, c, 0.0), 0.0, 1.0)


def aggregate(probabilities, certainties=None):
    """Whole-image distribution: certainty-weighted mean of patch distributions.

    Falls back to the plain mean when every certainty is 0 (e.g. an empty image).

    Parameters
    ----------
    probabilities : (P, K) array_like
    certainties : (P,) array_like, optional
        Computed with :func:`certainty` when not given.

    Returns
    -------
    (K,) ndarray
    """
    p = np.asarray(probabilities, dtype=np.float64)
    w = certainty(p) if certainties is None else np.asarray(certainties, dtype=np.float64)
    if w.sum() <= 0:
        return p.mean(axis=0)
    return (w[:, None] * p).sum(axis=0) / w.sum()


def image_certainties(probabilities, certainties=None):
    """The four whole-image certainties of the paper, as a dict.

    ``aggregate`` is the certainty of the aggregated distribution, ``mean`` and
    ``max`` summarise the patch certainties, and ``weighted`` is
    ``sum(c**2) / sum(c)``, the certainty-weighted mean certainty (0 if all c are 0).

    Examples
    --------
    >>> c = image_certainties([[1/3, 1/3, 1/3], [0, 0.2, 0.8]])
    >>> {k: round(v, 3) for k, v in c.items()}
    {'aggregate': 0.545, 'mean': 0.272, 'max': 0.545, 'weighted': 0.545}
    """
    p = np.asarray(probabilities, dtype=np.float64)
    c = certainty(p) if certainties is None else np.asarray(certainties, dtype=np.float64)
    total = c.sum()
    return {
        "aggregate": float(certainty(aggregate(p, c))),
        "mean": float(c.mean()),
        "max": float(c.max()),
        "weighted": float((c ** 2).sum() / total) if total > 0 else 0.0,
    }


def expected_level(probabilities):
    """Mean level ``sum_k k * p_k``: a continuous focus score, 0 = in focus."""
    p = np.asarray(probabilities, dtype=np.float64)
    return (p * np.arange(p.shape[-1])).sum(axis=-1) / p.sum(axis=-1)


def in_focus(probabilities):
    """True when at least half the probability lies on levels 0-2 (blur up to ~7 px).

    The rule is fixed by the method, not a user threshold: it is the acceptable-focus
    limit the original authors used with their own model.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    return bool(p[..., :IN_FOCUS_MAX_LEVEL + 1].sum(axis=-1) >= 0.5 * p.sum(axis=-1))
