"""Power log-log slope (PLLS), the classical focus metric of Bray et al. 2012.

A NumPy port of what CellProfiler's MeasureImageQuality computes (through
``centrosome.radial_power_spectrum``), used as the baseline in evaluation and
benchmarks. More negative = more blur; it needs a threshold tuned per dataset.

References
----------
.. [1] Bray MA et al. (2012) Workflow and metrics for image quality control in
   large-scale high-content screens. J Biomol Screen 17(2):266-74.
   https://doi.org/10.1177/1087057111420292
"""
import numpy as np
from scipy import ndimage


def radial_power_spectrum(image):
    """Summed FFT magnitude and power per integer radius, as CellProfiler bins them.

    Radii are index distances to the nearest corner of the unshifted FFT, binned as
    ``floor(r) + 1``; bins 2 .. min(M, N)/8 - 1 are kept (DC and edge effects dropped).
    The image is first divided by its median absolute deviation, so the slope does
    not depend on brightness.

    Returns
    -------
    labels, magnitude, power : ndarray
    """
    img = np.asarray(image, dtype=np.float64)
    rows = np.arange(img.shape[0])[:, None] ** 2 + np.arange(img.shape[1]) ** 2
    rows = np.minimum(rows, np.flipud(rows))
    radii2 = np.minimum(rows, np.fliplr(rows))
    if np.ptp(img) > 0:
        img = img / np.median(np.abs(img - img.mean()))
    magnitude = np.abs(np.fft.fft2(img - img.mean()))
    bins = np.floor(np.sqrt(radii2)).astype(int) + 1
    labels = np.arange(2, np.floor(min(img.shape) / 8.0)).astype(int)
    return (labels, ndimage.sum(magnitude, bins, labels), ndimage.sum(magnitude ** 2, bins, labels))


def power_log_log_slope(image):
    """Slope of log(power) against log(frequency bin): CellProfiler's PowerLogLogSlope.

    Returns 0 where the fit is undefined (constant image, fewer than two bins).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(size=(256, 256))
    >>> smooth = ndimage.gaussian_filter(noise, 3)
    >>> power_log_log_slope(smooth) < power_log_log_slope(noise)
    True
    """
    img = np.asarray(image, dtype=np.float64)
    labels, magnitude, power = radial_power_spectrum(img)
    keep = magnitude > 0
    labels, power = labels[keep], power[keep]
    if len(labels) < 2 or len(np.unique(img)) < 2:
        return 0.0
    with np.errstate(divide="ignore"):
        log_power = np.log(power)
    finite = np.isfinite(log_power)
    if finite.sum() < 2:
        return 0.0
    a = np.column_stack([np.log(labels[finite]), np.ones(finite.sum())])
    slope, _ = np.linalg.lstsq(a, log_power[finite], rcond=None)[0]
    return float(slope)
