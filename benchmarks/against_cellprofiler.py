"""The network in NumPy and in TensorFlow against PowerLogLogSlope as CellProfiler computes it, in one run.

    .venv-cp4/bin/python -m benchmarks.against_cellprofiler      # an environment with centrosome (CellProfiler's)

PLLS is computed as ``MeasureImageQuality.calculate_power_spectrum`` does: centrosome's radial power
spectrum, the unique-values check, and a least-squares line through log power against log radius.
Images are 2048x2048 fields of real cells (the tiled sample, as in ``benchmarks.suite``): typical
fields, about three quarters of whose patches have nothing to judge, and one with cells in every patch.
Best of 5 passes per image (other tenants of a shared machine only add time); the ratios compare
timings of this one run.
"""
import argparse

import numpy as np
import scipy.linalg

from .suite import dense_image, test_images, timed


def cellprofiler_plls(pixel_data):
    """PowerLogLogSlope exactly as CellProfiler 4.2.8's MeasureImageQuality computes it (no mask)."""
    from centrosome.radial_power_spectrum import rps

    radii, magnitude, power = rps(pixel_data)
    if sum(magnitude) > 0 and len(np.unique(pixel_data)) > 1:
        valid = magnitude > 0
        radii, power = radii[valid].reshape((-1, 1)), power[valid].reshape((-1, 1))
        if radii.shape[0] > 1:
            idx = np.isfinite(np.log(power))
            design = np.hstack((np.log(radii)[idx][:, np.newaxis], np.ones(radii.shape)[idx][:, np.newaxis]))
            return scipy.linalg.lstsq(design, np.log(power)[idx][:, np.newaxis])[0][0]
    return 0


def report(n_images):
    from model import load_model, predict

    numpy_model, tensorflow_model = load_model(backend="numpy"), load_model(backend="tensorflow")
    fields = {"typical 2048x2048 field": list(test_images((2048, 2048), n_images)),
              "2048x2048, cells in every patch": [dense_image((2048, 2048))]}
    lines = ["## The network against PowerLogLogSlope as CellProfiler computes it", "",
             f"Per image, best of 5, mean over {n_images} typical fields (TensorFlow {tensorflow_model.precision}; "
             "NumPy computes the same 8-bit rounding in float32):", "",
             "| image | CellProfiler's PLLS (s) | NumPy network (s) | TensorFlow network (s) "
             "| PLLS / NumPy | PLLS / TensorFlow |", "|---|---|---|---|---|---|"]
    for label, images in fields.items():
        scaled = [image.astype(np.float32) / 65535 for image in images]  # CellProfiler's pixel_data
        predict(images[0], model=numpy_model), predict(images[0], model=tensorflow_model)
        plls = timed(cellprofiler_plls, scaled, repeat=5) / len(images)
        in_numpy = timed(lambda im: predict(im, model=numpy_model), images, repeat=5) / len(images)
        in_tensorflow = timed(lambda im: predict(im, model=tensorflow_model), images, repeat=5) / len(images)
        lines.append(f"| {label} | {plls:.3f} | {in_numpy:.3f} | {in_tensorflow:.3f} | {plls / in_numpy:.1f}x "
                     f"| {plls / in_tensorflow:.1f}x |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10, help="typical fields (default 10)")
    print(report(parser.parse_args(argv).images))


if __name__ == "__main__":
    main()
