"""Synthetic defocus: the paper's defocus PSF and a camera (sensor) model.

The PSF is the scalar Born & Wolf defocus form used by Yang et al. 2018,

    h(r, z) = | C ∫_0^1 J0(k NA/n r ρ) exp(-½ j k ρ² z (NA/n)²) ρ dρ |²,  k = 2π/λ,

evaluated at ``z = 2 µm * level``: with λ = 500 nm, NA = 0.5, n = 1.0 and
0.65 µm pixels the blur diameter ``2 z NA/n`` grows by ~3.1 px per level, from
the diffraction limit (~2 px) at level 0 to ~31 px at level 10.
"""
import functools

import numpy as np
from scipy import signal, special

from .constants import FULL_SCALE_COUNTS, NUM_LEVELS

WAVELENGTH = 500e-9
NUMERICAL_APERTURE = 0.5
REFRACTIVE_INDEX = 1.0
PIXEL_SIZE = 0.65e-6
LEVEL_STEP = 2e-6  # defocus distance between consecutive levels


def psf_profile(radii, z, *, wavelength=WAVELENGTH, numerical_aperture=NUMERICAL_APERTURE,
                refractive_index=REFRACTIVE_INDEX, nodes=600):
    """Unnormalised ``|∫ J0(...) exp(...) ρ dρ|²`` at ``radii`` (m) for defocus ``z`` (m).

    Gauss-Legendre quadrature on ρ; ``nodes`` is ample for blur up to ~40 px.

    Examples
    --------
    >>> round(float(psf_profile(0.0, 0.0)), 5), round(float(psf_profile(0.0, 1e-6)), 5)
    (0.25, 0.20264)
    """
    k = 2 * np.pi / wavelength
    na_n = numerical_aperture / refractive_index
    x, w = np.polynomial.legendre.leggauss(nodes)
    rho, w = (x + 1) / 2, w / 2
    r = np.asarray(radii, dtype=np.float64)[..., None]
    integrand = special.j0(k * na_n * r * rho) * np.exp(-0.5j * k * rho ** 2 * z * na_n ** 2) * rho
    return np.abs((integrand * w).sum(axis=-1)) ** 2


@functools.lru_cache(maxsize=64)
def defocus_psf(level, pixel_size=PIXEL_SIZE, oversample=3):
    """The normalised (sum 1) blur kernel of a defocus level, cached.

    Each pixel averages ``oversample²`` sub-pixel samples, so the sub-pixel
    in-focus PSF is not aliased. The kernel is just wide enough for the blur disc.
    """
    if not 0 <= level < NUM_LEVELS:
        raise ValueError(f"`level` must be 0..{NUM_LEVELS - 1}, got {level}")
    z = level * LEVEL_STEP
    radius = int(np.ceil(z * NUMERICAL_APERTURE / REFRACTIVE_INDEX / pixel_size)) + 6
    sub = (np.arange(-radius * oversample, (radius + 1) * oversample) + 0.5 - oversample / 2) / oversample
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    values = psf_profile(np.hypot(yy, xx) * pixel_size, z)
    size = 2 * radius + 1
    kernel = values.reshape(size, oversample, size, oversample).mean(axis=(1, 3))
    kernel /= kernel.sum()
    kernel.setflags(write=False)
    return kernel


def blur_diameter_px(level, pixel_size=PIXEL_SIZE):
    """Geometric blur-disc diameter ``2 z NA / n`` of a level, in pixels."""
    return 2 * level * LEVEL_STEP * NUMERICAL_APERTURE / REFRACTIVE_INDEX / pixel_size


def defocus(image, level, pixel_size=PIXEL_SIZE):
    """Blur ``image`` (2-D, linear intensities) to a defocus level; FFT convolution.

    Edges are mirrored so that the blur does not darken the borders.
    """
    image = np.asarray(image, dtype=np.float32)
    kernel = defocus_psf(int(level), pixel_size).astype(np.float32)
    pad = kernel.shape[0] // 2
    padded = np.pad(image, pad, mode="symmetric")
    return signal.fftconvolve(padded, kernel, mode="same")[pad:-pad, pad:-pad]


def counts_of(plane):
    """A plane as float32 camera counts on the 16-bit scale (8-bit data x 257, the model's scale rule)."""
    return np.asarray(plane, dtype=np.float32) * (257.0 if np.asarray(plane).dtype == np.uint8 else 1.0)


def noise_sigma(image):
    """Robust estimate of white-noise std: MAD of neighbour differences over sqrt(2)."""
    d = np.diff(np.asarray(image, dtype=np.float64), axis=1).ravel()
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2))


def clean_signal(counts):
    """``(signal, black_level)``: an in-focus image's noise-free signal above its black level.

    The black level is the 0.5th percentile. The image's own noise is removed
    (non-local means), because blurring it with the sample would make the
    background get quieter with defocus, a cue real images never give: there the
    camera adds its noise after the optics. :func:`apply_sensor` adds it back.
    """
    from skimage import restoration

    base = float(np.percentile(counts, 0.5))
    signal = np.clip(np.asarray(counts, dtype=np.float64) - base, 0, None)
    sigma = noise_sigma(signal)
    if sigma > 0:
        signal = restoration.denoise_nl_means(signal, h=0.8 * sigma, sigma=sigma, patch_size=5,
                                              patch_distance=6, fast_mode=True, preserve_range=True)
    return signal.astype(np.float32), base


def apply_sensor(counts, rng, *, gain=1.0, offset=0.0, electrons_per_count=1.0, background=0.0,
                 read_noise=0.0):
    """Camera model: gain, shot noise, read noise, additive offset, clipping to 16 bits.

    Parameters
    ----------
    counts : ndarray
        Noise-free signal in camera counts (above the black level).
    rng : numpy.random.Generator
    gain : float
        Multiplies the signal (brightness of the sample / exposure).
    offset : float
        Black level added after the noise, in counts.
    electrons_per_count : float
        Photoelectrons per count; fewer means relatively more shot noise.
    background : float
        Uniform background light (autofluorescence, stray light) in counts; it
        carries shot noise, unlike ``offset``.
    read_noise : float
        Standard deviation of the camera's Gaussian read noise, in counts.

    Returns
    -------
    ndarray of float32, counts in [0, 65535]
    """
    signal = np.asarray(counts, dtype=np.float64) * gain + background
    electrons = np.clip(signal * electrons_per_count, 0, None)
    noisy = rng.poisson(electrons) / electrons_per_count + offset
    if read_noise:
        noisy = noisy + rng.normal(0.0, read_noise, size=noisy.shape)
    return np.clip(noisy, 0, FULL_SCALE_COUNTS).astype(np.float32)
