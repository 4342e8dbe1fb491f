"""Training material: in-focus source images, what they show, blurred to every level, sampled as patches.

Each in-focus image is a *source* of one stain, imaged widefield or confocal.
It is blurred once to every level with the thin-sample simulator and once with
the thick-sample one (see :mod:`model.training.simulator`), each level at three
focal planes across its 2 µm band (level ``L`` is any plane within ``2L ± 1`` µm
of best focus, as the 2 µm steps of a real focal stack and the tolerance of an
autofocus give). Patches are then cropped anywhere (so many show only
background), given a random camera, and augmented with flips, 8-bit
quantisation and zero-filled margins.

Levels are amounts of blur in pixels. A source imaged at a clearly higher
magnification than 20x (nuclei wider than 33 px; 20x nuclei measure 19-31 px)
is used twice: as it is, since users and their in-focus images come at every
magnification, and shrunk until its nuclei measure 26 px, the look of the
reference optics (20x, 0.65 µm per pixel). For stains other than DNA the
nuclei are measured in the DNA channel of the same field.

Confocal sources are optical sections, sharper at focus than the reference
widefield optics records any sample: under the ideal NA 0.5 PSF their level 0
would look like the widefield in-focus images' level -1. They first get the
reference optics' in-focus spread (:data:`CONFOCAL_IN_FOCUS_SIGMA`), so level 0
means the same on both (``focus-quality check-simulator``).
"""
import hashlib
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scipy import ndimage
from skimage import filters, measure, transform

from ..constants import FULL_SCALE_COUNTS, NUM_LEVELS, PATCH_SIZE
from ..image_files import expand_inputs, read_planes
from .simulator import (LEVEL_STEP, THICKNESS, apply_sensor, clean_signal, counts_of, image_planes,
                        thick_sample)

LOGGER = logging.getLogger(__name__)

#: Nuclei wider than this (px) mark a source imaged at a higher magnification than 20x ...
HIGH_MAGNIFICATION_NUCLEUS = 33.0
#: ... which is shrunk until its nuclei measure this: the middle of 20x widefield sources.
REFERENCE_NUCLEUS_DIAMETER = 26.0

#: DNA channel of the same field, for sources of other stains: (name suffix, replacement).
DNA_COMPANIONS = (("_F.TIF", "_D.TIF"), ("_R.TIF", "_D.TIF"), ("d1.tif", "d0.tif"), ("d2.tif", "d0.tif"),
                  ("hrh2ax2.tif", "hrhoe2.tif"))

#: Robust peak (99.9th percentile above background) each source is brought to
#: before the brightness augmentation; cells in 16-bit 20x images sit at ~1000-10000 counts.
REFERENCE_PEAK_COUNTS = 4000.0

#: Widefield sources already hold their own sample's haze: their thick variant adds a thin layer only.
WIDEFIELD_EXTRA_THICKNESS = 4e-6

#: Gaussian sigma (px) of the reference widefield optics' in-focus spread beyond the ideal PSF
#: (aberrations, pixel crosstalk, scattering), given to confocal sources. Calibrated on the
#: training widefield sources only: it brings the spectral slope of simulated level 0 from
#: confocal sources (-3.33 thin, -3.39 thick) to that of the real 20x widefield images (-3.68).
CONFOCAL_IN_FOCUS_SIGMA = 0.6

#: Focal planes sampled within each level's band, relative to its centre ``2 µm * L``.
LEVEL_BAND_OFFSETS = (-2e-6 / 3, 0.0, 2e-6 / 3)

# The paper's brightness augmentation, and camera-noise spreads of our own (log-uniform).
GAIN_RANGE = (0.2, 5.0)
OFFSET_RANGE = (1.0, 1000.0)
ELECTRONS_PER_COUNT_RANGE = (0.3, 3.0)
BACKGROUND_RANGE = (1.0, 500.0)
READ_NOISE_RANGE = (1.0, 10.0)
#: Chance that a patch comes from an 8-bit camera (quantised to 30-255 grey levels at its peak).
EIGHT_BIT_CHANCE = 0.2
#: Chance that a patch has a zero-filled margin (stitched or registered images); its level is kept.
ZERO_MARGIN_CHANCE = 0.05


@dataclass(frozen=True)
class SourceKind:
    """What a source image shows: its stain (for reports), its objects (for the thick model), its optics."""

    stain: str
    objects: str  # "nuclear" or "cell"
    optics: str  # "widefield" or "confocal"


NUCLEI_WIDEFIELD = SourceKind("nuclei", "nuclear", "widefield")

#: By file-name prefix (first match wins); anything else is a widefield nuclear stain.
KINDS = (
    ("mnfinder__", None),  # see _mnfinder_kind
    ("AS_09047_", SourceKind("GFP (cytoplasmic)", "cell", "widefield")),
    ("01_POS", None),  # fly channels: see _fly_kind
    ("AS_09125_050116030001_D03f00d1", SourceKind("PH3", "nuclear", "widefield")),
    ("AS_09125_050116030001_D03f00d2", SourceKind("cell body", "cell", "widefield")),
    ("1-162hrh2ax", SourceKind("foci (gamma-H2AX)", "nuclear", "widefield")),
)

#: Sources never trained on, so that evaluation measures generalisation to new
#: experiments, cell types, instruments and stains (see :func:`source_of`).
HELD_OUT_SOURCES = ("2022-10-14_U2OS", "HFF", "MCC13", "stardist",
                    "AS_09047_O10", "AS_09047_O11", "AS_09047_O12", "01_POS076")

#: Single fields of a stain seen nowhere else: training uses their top rows, evaluation the rest.
SPLIT_SOURCES = {"AS_09125": 0.6, "1-162": 0.6}


def source_of(path):
    """Source (experiment, instrument, plate well or field) a file comes from, for held-out splits."""
    name = Path(path).stem
    parts = name.split("__")
    if parts[0] == "mnfinder" and len(parts) >= 4:
        folder, item = parts[2], parts[3]
        if folder.endswith("_misc"):
            for prefix in ("HFF", "MCC13", "MAX"):
                if item.startswith(prefix):
                    return prefix
        return folder
    if name.startswith("AS_09047_"):
        return "AS_09047_" + name.split("_")[3][:3]  # the plate well, e.g. O10
    if name.startswith("01_POS"):
        return name[:9]
    for prefix in SPLIT_SOURCES:
        if name.startswith(prefix):
            return prefix
    return parts[0]


def kind_of(path):
    """The :class:`SourceKind` of a file, from its name."""
    name = Path(path).name
    if name.startswith("mnfinder__"):
        return _mnfinder_kind(name)
    if name.startswith("01_POS"):
        return _fly_kind(name)
    for prefix, kind in KINDS:
        if kind is not None and name.startswith(prefix):
            return kind
    return NUCLEI_WIDEFIELD


def _mnfinder_kind(name):
    # The dated RPE-1 / U2OS experiments are 20x widefield; the "misc" folder holds confocal projections.
    return SourceKind("nuclei", "nuclear", "confocal" if "_misc__" in name else "widefield")


def _fly_kind(name):
    channel = Path(name).stem[-1]
    if channel == "D":
        return SourceKind("nuclei", "nuclear", "widefield")
    return SourceKind({"F": "fly F (cytoskeletal)", "R": "fly R (cytoplasmic)"}[channel], "cell", "widefield")


def split_rows(path, part):
    """Row slice of a file used for ``part`` ("train" or "test"); all rows unless the source is split."""
    fraction = SPLIT_SOURCES.get(source_of(path))
    if fraction is None:
        return slice(None)
    rows = read_planes(path)[0][1].shape[0]
    cut = int(round(fraction * rows))
    return slice(None, cut) if part == "train" else slice(cut, None)


def nucleus_diameter(image):
    """Median equivalent diameter (px) of Otsu-segmented objects, or NaN if none."""
    smooth = filters.gaussian(np.asarray(image, dtype=np.float64), 1.5)
    labels = measure.label(smooth > filters.threshold_otsu(smooth))
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas >= 30]
    return float(np.median(2 * np.sqrt(areas / np.pi))) if len(areas) else float("nan")


def reference_scale(path):
    """Zoom factor bringing a source to the reference optics: < 1 for high-magnification sources, else 1."""
    path = Path(path)
    dna = path
    for suffix, replacement in DNA_COMPANIONS:
        if path.name.endswith(suffix) and (path.parent / path.name.replace(suffix, replacement)).is_file():
            dna = path.parent / path.name.replace(suffix, replacement)
    if kind_of(dna).objects != "nuclear":
        return 1.0
    diameter = nucleus_diameter(counts_of(read_planes(dna)[0][1]))
    return REFERENCE_NUCLEUS_DIAMETER / diameter if diameter > HIGH_MAGNIFICATION_NUCLEUS else 1.0


def reference_signal(plane, scale=1.0):
    """An in-focus plane as clean, background-free counts at the reference optics and brightness."""
    plane = counts_of(plane)
    if scale != 1:
        plane = transform.rescale(plane, scale, anti_aliasing=True, preserve_range=True)
    signal, _ = clean_signal(plane)
    peak = np.percentile(signal, 99.9)
    return (signal * (REFERENCE_PEAK_COUNTS / peak if peak > 0 else 1.0)).astype(np.float32)


def thickness_range(kind):
    """Object thicknesses (m) of the thick variant of a source of ``kind``."""
    if kind.optics == "widefield":
        return (1e-6, WIDEFIELD_EXTRA_THICKNESS)
    return THICKNESS[kind.objects]


def simulate(signal, kind, variant, planes, seed=0):
    """``signal`` with its focal plane at each of ``planes`` (m), thin or thick sample; ``(P, M, N)`` float32."""
    if kind.optics == "confocal":
        signal = ndimage.gaussian_filter(np.asarray(signal, dtype=np.float32), CONFOCAL_IN_FOCUS_SIGMA)
    if variant == "thin":
        return image_planes(signal[None], [0.0], planes)
    if variant != "thick":
        raise ValueError(f"`variant` must be 'thin' or 'thick', got {variant!r}")
    slabs, depths = thick_sample(signal, kind.objects, np.random.default_rng(seed),
                                 thickness=thickness_range(kind))
    return image_planes(slabs, depths, planes)


def level_planes(levels=range(NUM_LEVELS), offsets=(0.0,)):
    """Focal planes (m) of ``levels``, each at the given ``offsets`` within its band, level-major."""
    return [level * LEVEL_STEP + offset for level in levels for offset in offsets]


@dataclass
class Source:
    path: Path
    source: str
    kind: SourceKind
    planes: dict  # variant -> (11, 3, M, N) float16 counts: each level at the band offsets


VARIANTS = ("thin", "thick")


#: Changes whenever what :func:`_prepare` makes changes, so cached sources are not reused.
PREPARATION_VERSION = "4"


def _prepare(job):
    path, part, seed, cache, scale = job
    if cache is not None:
        key = hashlib.sha256(Path(path).read_bytes()
                             + f"{part} {seed} {scale:.4f} {PREPARATION_VERSION}".encode()).hexdigest()
        cached = Path(cache) / f"{key}.npz"
        if cached.is_file():
            with np.load(cached) as saved:
                return {variant: saved[variant] for variant in VARIANTS}
    _, plane = read_planes(path)[0]
    signal = reference_signal(plane[split_rows(path, part)], scale)
    kind, planes = kind_of(path), level_planes(offsets=LEVEL_BAND_OFFSETS)
    shape = (NUM_LEVELS, len(LEVEL_BAND_OFFSETS)) + signal.shape
    stacks = {variant: simulate(signal, kind, variant, planes, seed=seed).astype(np.float16).reshape(shape)
              for variant in VARIANTS}
    if cache is not None:
        Path(cache).mkdir(parents=True, exist_ok=True)
        np.savez(cached, **stacks)
    return stacks


def distinct_files(inputs):
    """Image files of ``inputs`` with duplicates (same pixels) removed, training-split copies first."""
    files, seen = [], set()
    for path in sorted(expand_inputs(inputs), key=lambda p: ("__training__" not in p.name, p.name)):
        digest = hashlib.sha256(read_planes(path)[0][1].tobytes()).hexdigest()
        if digest in seen:
            LOGGER.info("skipping %s: same pixels as an earlier file", path.name)
            continue
        seen.add(digest)
        files.append(path)
    return files


def load_sources(inputs, *, exclude_sources=(), workers=2, seed=0, cache=None):
    """Read, deduplicate, normalise and pre-blur (both variants) the in-focus training images.

    With ``cache`` (a folder), prepared sources are saved there and reused by later runs.
    """
    files = [p for p in distinct_files(inputs) if source_of(p) not in exclude_sources]
    jobs = [(path, "train", seed + i, cache, scale) for i, path in enumerate(files)
            for scale in sorted({1.0, reference_scale(path)}, reverse=True)]
    with ProcessPoolExecutor(workers) as pool:
        stacks = list(pool.map(_prepare, jobs))
    return [Source(job[0], source_of(job[0]), kind_of(job[0]), s) for job, s in zip(jobs, stacks)]


def sample_patches(sources, count, rng, *, levels=None):
    """``count`` random 84x84 crops, each at a random level, plane within it and variant, with a random camera.

    Crops land anywhere, so many show only background: the net must learn to be
    uncertain there. Returns patches ``(count, 84, 84, 1)`` on the model scale and
    their levels ``(count,)``.
    """
    areas = np.array([s.planes["thin"][0, 0].size for s in sources], dtype=np.float64)
    picks = rng.choice(len(sources), size=count, p=areas / areas.sum())
    levels = rng.integers(0, NUM_LEVELS, size=count) if levels is None else np.asarray(levels)
    variants = rng.choice(VARIANTS, size=count)
    offsets = rng.integers(0, len(LEVEL_BAND_OFFSETS), size=count)
    crops = np.empty((count, PATCH_SIZE, PATCH_SIZE), dtype=np.float32)
    for i, (pick, level, variant, offset) in enumerate(zip(picks, levels, variants, offsets)):
        stack = sources[pick].planes[variant]
        r = rng.integers(0, stack.shape[2] - PATCH_SIZE + 1)
        c = rng.integers(0, stack.shape[3] - PATCH_SIZE + 1)
        crop = stack[level, offset, r:r + PATCH_SIZE, c:c + PATCH_SIZE]
        crops[i] = np.rot90(crop, rng.integers(4))[:, ::rng.choice([-1, 1])]
    patches = random_camera(crops, rng)
    _quantise_some_to_8_bits(patches, rng)
    _zero_fill_some_margins(patches, rng)
    return (patches / np.float32(FULL_SCALE_COUNTS))[..., None], levels


def _log_uniform(rng, lo, hi, size=None):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size=size))


def random_camera(counts, rng, *, gain=None, offset=None):
    """The sensor model with the paper's log-uniform gain and offset (unless given) and random noise.

    ``counts`` is one image or a stack of patches; each patch of a stack gets its own camera.
    """
    counts = np.asarray(counts, dtype=np.float32)
    size = (len(counts), 1, 1) if counts.ndim == 3 else None
    return apply_sensor(counts, rng,
                        gain=_log_uniform(rng, *GAIN_RANGE, size) if gain is None else gain,
                        offset=_log_uniform(rng, *OFFSET_RANGE, size) if offset is None else offset,
                        electrons_per_count=_log_uniform(rng, *ELECTRONS_PER_COUNT_RANGE, size),
                        background=_log_uniform(rng, *BACKGROUND_RANGE, size),
                        read_noise=_log_uniform(rng, *READ_NOISE_RANGE, size))


def _quantise_some_to_8_bits(patches, rng):
    """Round some patches to the grey levels of an 8-bit camera whose full scale is near their peak."""
    for i in np.flatnonzero(rng.random(len(patches)) < EIGHT_BIT_CHANCE):
        grey_levels = rng.uniform(30, 255)
        step = max(float(np.percentile(patches[i], 99.5)), 1.0) / grey_levels
        np.round(patches[i] / step, out=patches[i])
        patches[i] = np.minimum(patches[i], 255) * step


def _zero_fill_some_margins(patches, rng):
    """Zero a band along one side of some patches, as stitching and registration leave."""
    for i in np.flatnonzero(rng.random(len(patches)) < ZERO_MARGIN_CHANCE):
        width = rng.integers(8, PATCH_SIZE - 8)
        side = rng.integers(4)
        band = (slice(None), slice(None, width)) if side < 2 else (slice(None, width), slice(None))
        view = patches[i] if side % 2 == 0 else patches[i][::-1, ::-1]
        view[band] = 0
