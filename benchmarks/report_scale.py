"""`focus-quality report` on a screen-sized results.csv: time and page size.

    python -m benchmarks.report_scale               # 10 plates x 384 wells x 9 sites x 3 channels = 103,680 images

The results.csv is generated (ImageXpress names; levels drawn at random, a few wells out of focus,
a few errors and images with nothing to judge); no image files exist, so the page's gallery has
no thumbnails, as for a results folder written with --no-png and moved away from its images.
"""
import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from model.screen_report import write_report

COLUMNS = ["path", "plane", "series", "channel", "z", "t", "predicted_level", "expected_level", "in_focus",
           "aggregate_certainty", "patch_count", "empty_patches", "annotated", "error"]


def write_results(path, plates, sites, channels, seed=0):
    rng = np.random.default_rng(seed)
    count = 0
    with open(path, "w", newline="") as fd:
        writer = csv.writer(fd)
        writer.writerow(COLUMNS)
        for p in range(plates):
            blurred = set(rng.choice(384, 8, replace=False))
            for w in range(384):
                well = f"{'ABCDEFGHIJKLMNOP'[w // 24]}{w % 24 + 1:02d}"
                for s in range(1, sites + 1):
                    for c in range(1, channels + 1):
                        name = f"/screen/Plate{p + 1}/Plate{p + 1}_{well}_s{s}_w{c}.tif"
                        draw = rng.random()
                        if draw < 0.001:
                            writer.writerow([name] + [""] * 12 + ["damaged or truncated file"])
                        elif draw < 0.01:
                            writer.writerow([name, 0, "", "", "", "", "nan", "nan", "False", 0, 48, 48, "", ""])
                        else:
                            expected = rng.uniform(5, 9) if w in blurred else rng.uniform(0, 2.2)
                            writer.writerow([name, 0, "", "", "", "", round(expected), round(expected, 4),
                                             str(expected < 2.4), 0.5, 48, 30, "", ""])
                        count += 1
    return count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plates", type=int, default=10)
    parser.add_argument("--sites", type=int, default=9)
    parser.add_argument("--channels", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        results = Path(scratch) / "results.csv"
        images = write_results(results, args.plates, args.sites, args.channels)
        start = time.perf_counter()
        screen, written = write_report(results, Path(scratch) / "qc")
        seconds = time.perf_counter() - start
        sizes = {p.name: p.stat().st_size / 2**20 for p in written}
    print(f"`focus-quality report` on {images:,} images ({args.plates} plates of 384 wells, {args.sites} sites, "
          f"{args.channels} channels): {seconds:.1f} s; report.html {sizes['report.html']:.1f} MB, wells.csv "
          f"{sizes['wells.csv']:.1f} MB, {len(screen.to_reimage):,} images to re-image")


if __name__ == "__main__":
    main()
