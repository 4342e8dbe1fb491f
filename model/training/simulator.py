"""Synthetic defocus: the paper's defocus PSF, thin and thick samples, and a camera model.

The PSF is the scalar Born & Wolf defocus form used by Yang et al. 2018,

    h(r, z) = | C ∫_0^1 J0(k NA/n r ρ) exp(-½ j k ρ² z (NA/n)²) ρ dρ |²,  k = 2π/λ,

and level ``L`` is a focal plane ``z = 2 µm * L`` from best focus: with
λ = 500 nm, NA = 0.5, n = 1.0 and 0.65 µm pixels the blur diameter ``2 z NA/n``
grows by ~3.1 px per level, to ~31 px at level 10.

Two sample models turn one in-focus 2-D image into every level:

- **thin** (:func:`defocus`): the image is the sample, blurred by the PSF at
  ``z`` -- the paper's simulator, right for optical sections (confocal, spinning
  disk) and for widefield images, which already hold their sample's haze.
- **thick** (:func:`thick_sample` then :func:`image_planes`): the image is read as
  the projection of cells or nuclei with a dome-shaped thickness profile; each
  1 µm slab of that volume is blurred by the PSF at its own distance from the
  focal plane and the slabs add up. So level 0 carries the out-of-focus light a
  widefield microscope records from above and below the focal plane, as real
  widefield images of 5-10 µm nuclei do. Fine texture (chromatin, vesicles) is
  kept within ±1 µm of the object's middle: away from it, structure is
  uncorrelated with the in-focus texture and only its smooth part is carried.
"""
import functools

import numpy as np
from scipy import fft, ndimage, special

from ..constants import FULL_SCALE_COUNTS, NUM_LEVELS

WAVELENGTH = 500e-9
NUMERICAL_APERTURE = 0.5
REFRACTIVE_INDEX = 1.0
PIXEL_SIZE = 0.65e-6
LEVEL_STEP = 2e-6  # defocus distance between consecutive levels

#: Thickness of the slabs a thick sample is cut into.
SLAB_STEP = 1e-6
#: Fine texture lies within this distance of an object's middle plane.
TEXTURE_DEPTH = 1e-6
#: Scale (px) separating fine texture from an object's smooth body.
TEXTURE_SIGMA = 1.5

#: Object thickness ranges (m) of the thick model: nuclei and whole cells. Depth blurs as
#: ``z * NA``, so with the levels' NA of 0.5 these also stand for 5-10 µm nuclei seen
#: through the NA 0.75-0.8 objectives of many 20x screens.
THICKNESS = {"nuclear": (4e-6, 16e-6), "cell": (2e-6, 12e-6)}


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


@functools.lru_cache(maxsize=128)
def psf_at(z, pixel_size=PIXEL_SIZE, oversample=3):
    """The normalised (sum 1) blur kernel of a focal plane ``z`` metres from the object, cached.

    Each pixel averages ``oversample²`` sub-pixel samples, so the sub-pixel
    in-focus PSF is not aliased. The kernel is just wide enough for the blur disc.
    The PSF is symmetric in ``z``.
    """
    z = abs(float(z))
    radius = int(np.ceil(z * NUMERICAL_APERTURE / REFRACTIVE_INDEX / pixel_size)) + 6
    sub = (np.arange(-radius * oversample, (radius + 1) * oversample) + 0.5 - oversample / 2) / oversample
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    # The PSF depends on the radius only: evaluate it on a 1/100-pixel radial grid and interpolate.
    grid = np.arange(0, radius * np.sqrt(2) + 1, 0.01)
    values = np.interp(np.hypot(yy, xx), grid, psf_profile(grid * pixel_size, z))
    size = 2 * radius + 1
    kernel = values.reshape(size, oversample, size, oversample).mean(axis=(1, 3))
    kernel /= kernel.sum()
    kernel.setflags(write=False)
    return kernel


def defocus_psf(level, pixel_size=PIXEL_SIZE):
    """The blur kernel of a defocus level (0-10)."""
    if not 0 <= level < NUM_LEVELS:
        raise ValueError(f"`level` must be 0..{NUM_LEVELS - 1}, got {level}")
    return psf_at(round(level * LEVEL_STEP, 9), pixel_size)


def blur_diameter_px(level, pixel_size=PIXEL_SIZE):
    """Geometric blur-disc diameter ``2 z NA / n`` of a level, in pixels."""
    return 2 * level * LEVEL_STEP * NUMERICAL_APERTURE / REFRACTIVE_INDEX / pixel_size


def defocus(image, level, pixel_size=PIXEL_SIZE):
    """Blur a thin sample ``image`` (2-D, linear intensities) to a defocus level; edges mirrored."""
    return image_planes(np.asarray(image, dtype=np.float32)[None], [0.0], [level * LEVEL_STEP], pixel_size)[0]


def thick_sample(signal, kind, rng, *, thickness=None):
    """Slabs ``(K, M, N)`` and their depths ``(K,)`` (m) of a sample whose projection is ``signal``.

    Parameters
    ----------
    signal : (M, N) ndarray
        Clean in-focus image (background 0), read as the sample's projection along z.
    kind : {"nuclear", "cell"}
        Objects found by thresholding: nuclei (Otsu) or whole cells (half of Otsu,
        which takes in dim cytoplasm).
    rng : numpy.random.Generator
        Draws each object's thickness from ``thickness``.
    thickness : (float, float), optional
        Range of object thicknesses in metres; default ``THICKNESS[kind]``.

    Notes
    -----
    Each object is a dome: its thickness falls from the drawn value at its
    centre to zero at its edge, as ``sqrt(1 - (1 - d/dmax)²)`` of the distance
    ``d`` to the edge. A pixel's signal is spread evenly over its thickness,
    centred on the focal plane of level 0. Summed over the slabs, the sample
    gives back ``signal`` exactly.
    """
    from skimage import filters, measure, morphology

    signal = np.asarray(signal, dtype=np.float32)
    lo, hi = THICKNESS[kind] if thickness is None else thickness
    smooth = ndimage.gaussian_filter(signal, 1.5)
    level = filters.threshold_otsu(smooth) * (1.0 if kind == "nuclear" else 0.5)
    mask = morphology.remove_small_objects(ndimage.binary_fill_holes(smooth > level), 30)
    labels = measure.label(mask)
    distance = ndimage.distance_transform_edt(mask)
    count = int(labels.max())
    height = np.zeros_like(signal)
    if count:
        peak = np.asarray(ndimage.maximum(distance, labels, np.arange(1, count + 1)))
        tall = rng.uniform(lo, hi, size=count)
        inside = labels > 0
        h = distance[inside] / peak[labels[inside] - 1]
        height[inside] = tall[labels[inside] - 1] * np.sqrt(np.clip(1 - (1 - h) ** 2, 0, 1))
    height = np.maximum(height, SLAB_STEP)  # what lies outside the objects stays in one slab
    half = int(np.ceil(hi / 2 / SLAB_STEP))
    depths = np.arange(-half, half + 1) * SLAB_STEP
    # Fraction of each pixel's column inside each slab: overlap of [z - s/2, z + s/2] with [-h/2, h/2].
    top = np.minimum(depths[:, None, None] + SLAB_STEP / 2, height / 2)
    bottom = np.maximum(depths[:, None, None] - SLAB_STEP / 2, -height / 2)
    weights = np.clip(top - bottom, 0, None) / height
    textured = weights * (np.abs(depths) <= TEXTURE_DEPTH + 1e-12)[:, None, None]
    textured /= textured.sum(axis=0, keepdims=True)
    body = ndimage.gaussian_filter(signal, TEXTURE_SIGMA)
    slabs = body * weights + (signal - body) * textured
    return slabs.astype(np.float32), depths


def image_planes(slabs, depths, planes, pixel_size=PIXEL_SIZE):
    """The images ``(len(planes), M, N)`` of a sample with its focal plane at each of ``planes`` (m).

    A focal plane ``p`` blurs the slab at depth ``d`` by the PSF at ``|p + d|``;
    the slabs are summed in the Fourier domain (one transform per slab). Level
    ``L`` is the plane ``2 µm * L``. Edges are mirrored.
    """
    slabs = np.asarray(slabs, dtype=np.float32)
    distances = sorted({round(abs(p + d), 9) for p in planes for d in depths})
    pad = max(psf_at(z, pixel_size).shape[0] for z in distances) // 2
    padded_shape = tuple(fft.next_fast_len(n + 2 * pad, real=True) for n in slabs.shape[1:])
    spectra = [fft.rfft2(np.pad(s, pad, mode="symmetric"), padded_shape, workers=-1) for s in slabs]
    otf = {z: _otf(psf_at(z, pixel_size), padded_shape) for z in distances}
    rows, cols = slabs.shape[1:]
    out = np.empty((len(planes), rows, cols), dtype=np.float32)
    for i, plane in enumerate(planes):
        total = sum(spectrum * otf[round(abs(plane + d), 9)] for spectrum, d in zip(spectra, depths))
        out[i] = fft.irfft2(total, padded_shape, workers=-1)[pad:pad + rows, pad:pad + cols]
    return np.clip(out, 0, None, out=out)


def _otf(kernel, shape):
    """Transfer function of ``kernel`` centred at the origin of an array of ``shape``."""
    embedded = np.zeros(shape, dtype=np.float32)
    r = kernel.shape[0] // 2
    embedded[:kernel.shape[0], :kernel.shape[1]] = kernel
    embedded = np.roll(embedded, (-r, -r), axis=(0, 1))
    return fft.rfft2(embedded, workers=-1)


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
    gain : float or ndarray
        Multiplies the signal (brightness of the sample / exposure). This and the
        other camera parameters may be arrays that broadcast against ``counts``
        (e.g. ``(B, 1, 1)`` for one camera per patch of a stack).
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
    if np.any(read_noise):
        noisy = noisy + rng.normal(0.0, 1.0, size=noisy.shape) * read_noise
    return np.clip(noisy, 0, FULL_SCALE_COUNTS).astype(np.float32)
