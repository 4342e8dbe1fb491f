"""Training material: in-focus source images, blurred to every level, sampled as patches."""
import hashlib
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skimage import filters, measure, transform

from .constants import NUM_LEVELS, PATCH_SIZE
from .image_files import expand_inputs, read_planes
from .simulator import apply_sensor, clean_signal, counts_of, defocus

LOGGER = logging.getLogger(__name__)

#: Typical nucleus diameter (px) at the reference optics (20x, 0.65 µm/px): the median
#: (~23 px) of the 20x widefield sources (mnfinder RPE-1/U2OS, 0.645 µm/px). Larger-looking
#: (higher-magnification) sources are shrunk to it, so "level 0" means the same blur in each.
REFERENCE_NUCLEUS_DIAMETER = 23.0

#: Robust peak (99.9th percentile above background) each source is brought to
#: before the brightness augmentation; cells in 16-bit 20x images sit at ~1000-10000 counts.
REFERENCE_PEAK_COUNTS = 4000.0

# The paper's brightness augmentation, and camera-noise spreads of our own (log-uniform).
GAIN_RANGE = (0.2, 5.0)
OFFSET_RANGE = (1.0, 1000.0)
ELECTRONS_PER_COUNT_RANGE = (0.3, 3.0)
BACKGROUND_RANGE = (1.0, 500.0)
READ_NOISE_RANGE = (1.0, 10.0)


def source_of(path):
    """Source (experiment / instrument) a training file comes from, for held-out splits."""
    name = Path(path).stem
    parts = name.split("__")
    if parts[0] != "mnfinder" or len(parts) < 4:
        return parts[0]
    folder, item = parts[2], parts[3]
    if folder.endswith("_misc"):
        for prefix in ("HFF", "MCC13", "MAX"):
            if item.startswith(prefix):
                return prefix
    return folder


def nucleus_diameter(image):
    """Median equivalent diameter (px) of Otsu-segmented objects, or NaN if none."""
    smooth = filters.gaussian(image.astype(np.float64), 1.5)
    labels = measure.label(smooth > filters.threshold_otsu(smooth))
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas >= 30]
    return float(np.median(2 * np.sqrt(areas / np.pi))) if len(areas) else float("nan")


def to_reference(image):
    """An in-focus image as clean, background-free counts at the reference scale and brightness."""
    img = counts_of(image).astype(np.float64)
    diameter = nucleus_diameter(img)
    if np.isfinite(diameter) and diameter > REFERENCE_NUCLEUS_DIAMETER:
        img = transform.rescale(img, REFERENCE_NUCLEUS_DIAMETER / diameter, anti_aliasing=True,
                                preserve_range=True)
    img, _ = clean_signal(img)
    peak = np.percentile(img, 99.9)
    return (img * (REFERENCE_PEAK_COUNTS / peak if peak > 0 else 1.0)).astype(np.float32)


@dataclass
class Source:
    path: Path
    source: str
    levels: np.ndarray  # (11, M, N) float32 counts, blurred to each level


def _prepare(path):
    _, plane = read_planes(path)[0]
    ref = to_reference(plane)
    return np.stack([defocus(ref, level) for level in range(NUM_LEVELS)])


def load_sources(inputs, *, exclude_sources=(), workers=2):
    """Read, deduplicate, normalise and pre-blur the in-focus training images."""
    files, seen = [], set()
    # Files of the "training" splits first, so that a duplicate keeps its training-source name.
    for path in sorted(expand_inputs(inputs), key=lambda p: ("__training__" not in p.name, p.name)):
        digest = hashlib.sha256(read_planes(path)[0][1].tobytes()).hexdigest()
        if digest in seen:
            LOGGER.info("skipping %s: same pixels as an earlier file", path.name)
            continue
        seen.add(digest)
        if source_of(path) not in exclude_sources:
            files.append(path)
    with ProcessPoolExecutor(workers) as pool:
        stacks = list(pool.map(_prepare, files))
    return [Source(p, source_of(p), s) for p, s in zip(files, stacks)]


def sample_patches(sources, count, rng, *, levels=None):
    """``count`` random 84x84 crops, each at a random level with random brightness.

    Crops land anywhere, so many show only background: the net must learn to be
    uncertain there. Returns patches ``(count, 84, 84, 1)`` on the model scale and
    their levels ``(count,)``.
    """
    areas = np.array([s.levels[0].size for s in sources], dtype=np.float64)
    picks = rng.choice(len(sources), size=count, p=areas / areas.sum())
    levels = rng.integers(0, NUM_LEVELS, size=count) if levels is None else np.asarray(levels)
    patches = np.empty((count, PATCH_SIZE, PATCH_SIZE, 1), dtype=np.float32)
    for i, (pick, level) in enumerate(zip(picks, levels)):
        stack = sources[pick].levels
        r = rng.integers(0, stack.shape[1] - PATCH_SIZE + 1)
        c = rng.integers(0, stack.shape[2] - PATCH_SIZE + 1)
        crop = stack[level, r:r + PATCH_SIZE, c:c + PATCH_SIZE]
        patches[i, ..., 0] = random_camera(crop, rng)
    return patches / np.float32(65535.0), levels


def random_camera(counts, rng, *, gain=None, offset=None):
    """Apply the sensor model with the paper's log-uniform gain and offset (unless given) and random noise."""
    def log_uniform(lo, hi):
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return apply_sensor(counts, rng,
                        gain=log_uniform(*GAIN_RANGE) if gain is None else gain,
                        offset=log_uniform(*OFFSET_RANGE) if offset is None else offset,
                        electrons_per_count=log_uniform(*ELECTRONS_PER_COUNT_RANGE),
                        background=log_uniform(*BACKGROUND_RANGE), read_noise=log_uniform(*READ_NOISE_RANGE))

