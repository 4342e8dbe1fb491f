"""``focus-quality summarize``: plots from a results folder written by ``predict``."""
import csv
from pathlib import Path

import numpy as np

from .constants import NUM_LEVELS, PATCH_SIZE
from .overlay import display_gray, level_color
from .plotting import pyplot, save_figure

CERTAINTY_BINS = 10


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def summarize(results_dir, *, seed=0):
    """Write ``summary/`` plots for a ``predict`` output folder; returns the files written.

    - ``level_histogram.png``: images per predicted level;
    - ``certainty_scatter.png``: mean vs aggregate certainty per image, coloured by level;
    - ``patch_montage.png``: one example patch per level (rows) and certainty bin
      (columns), like Fig. 6 of Yang et al. 2018.
    """
    plt = pyplot()
    results_dir = Path(results_dir)
    results_file = results_dir / "results.csv"
    if not results_file.is_file():
        raise FileNotFoundError(f"{results_file} not found: run `focus-quality predict ... --output "
                                f"{results_dir}` first")
    rows = [r for r in _read_csv(results_file) if not r.get("error") and _judged(r["predicted_level"])]
    if not rows:
        raise ValueError(f"{results_file} has no assessed images with anything to judge to summarise")
    out = results_dir / "summary"
    out.mkdir(exist_ok=True)
    levels = np.array([int(r["predicted_level"]) for r in rows])
    colours = [level_color(k) for k in range(NUM_LEVELS)]
    written = []

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(range(NUM_LEVELS), np.bincount(levels, minlength=NUM_LEVELS), color=colours, edgecolor="k")
    ax.set(xlabel="predicted level (0 = in focus, 10 = ~30 px blur)", ylabel="images",
           title=f"Focus levels of {len(rows)} images", xticks=range(NUM_LEVELS))
    written.append(save_figure(fig, out / "level_histogram.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter([float(r["mean_certainty"]) for r in rows], [float(r["aggregate_certainty"]) for r in rows],
               c=[colours[k] for k in levels], edgecolors="k", linewidths=0.3)
    ax.set(xlabel="mean patch certainty", ylabel="aggregate certainty", xlim=(0, 1), ylim=(0, 1),
           title="Certainty per image (colour = level)")
    written.append(save_figure(fig, out / "certainty_scatter.png"))

    patches_file = results_dir / "patches.csv"
    if patches_file.is_file():
        written.append(_patch_montage(_read_csv(patches_file), out / "patch_montage.png", plt, seed))
    return written


def _patch_montage(patch_rows, path, plt, seed):
    """Grid of example patches: rows = level, columns = certainty bin (0-0.1 ... 0.9-1)."""
    from .image_files import read_planes

    rng = np.random.default_rng(seed)
    cells = {}
    for row in patch_rows:
        if not _judged(row["level"]):
            continue
        key = (int(row["level"]), min(int(float(row["certainty"]) * CERTAINTY_BINS), CERTAINTY_BINS - 1))
        cells.setdefault(key, []).append(row)
    planes = {}
    fig, axes = plt.subplots(NUM_LEVELS, CERTAINTY_BINS, figsize=(CERTAINTY_BINS, NUM_LEVELS * 1.05))
    for (level, b), ax in np.ndenumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if b == 0:
            ax.set_ylabel(str(level), rotation=0, labelpad=10, va="center")
        if level == NUM_LEVELS - 1:
            ax.set_xlabel(f"{b / CERTAINTY_BINS:.1f}-{(b + 1) / CERTAINTY_BINS:.1f}", fontsize=7)
        candidates = cells.get((level, b))
        if not candidates:
            continue
        row = candidates[rng.integers(len(candidates))]
        key = (row["path"], int(row["plane"]))
        if key not in planes:
            try:
                planes[key] = dict(read_planes(row["path"]))[key[1]]
            except Exception:  # the image moved since predict ran: leave the cell blank
                planes[key] = None
        if planes[key] is None:
            continue
        r, c = int(row["row"]), int(row["col"])
        patch = display_gray(planes[key][r:r + PATCH_SIZE, c:c + PATCH_SIZE])
        ax.imshow(patch, cmap="gray")
        colour = level_color(level, float(row["certainty"]))
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_color(colour)
            spine.set_linewidth(3)
    fig.suptitle("Example patches: level (rows) by certainty (columns)")
    fig.supxlabel("certainty")
    fig.supylabel("predicted level")
    return save_figure(fig, path)


def _judged(level):
    """Whether a level cell holds a level (images and patches with nothing to judge have NaN)."""
    return level not in ("", "nan")
