"""MeasureImageFocus against MeasureImageQuality's blur measurements, inside one CellProfiler pipeline.

    .venv/bin/python -m benchmarks.inside_cellprofiler --cellprofiler-python .venv-cp4-app/bin/python

CellProfiler runs headless in the environment given (by default the one shaped like the app, with the
plugins folder `focus-quality cellprofiler-plugin` writes, so the network runs in NumPy), on 2048x2048
fields of real cells: typical fields and one with cells in every patch. One pipeline: Images ->
NamesAndTypes -> MeasureImageQuality (blur: FocusScore, LocalFocusScore, Correlation, PowerLogLogSlope;
saturation, intensity and thresholds off) -> MeasureImageFocus -> ExportToSpreadsheet. Reported per image
and module: CellProfiler's ExecutionTime (CPU seconds, what Image.csv records) and the wall time it logs.
"""
import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import tifffile

from .suite import ROOT, dense_image, test_images

#: Run in the CellProfiler environment: writes the pipeline with CellProfiler's own API.
BUILD_PIPELINE = """
import sys
import cellprofiler_core.preferences as p
p.set_headless(); p.set_plugin_directory(sys.argv[1], globally=False)
import cellprofiler_core.modules
from cellprofiler_core.pipeline import Pipeline
from cellprofiler_core.utilities.core.modules import instantiate_module
pipeline = Pipeline()
for number, name in enumerate(["Images", "Metadata", "NamesAndTypes", "Groups", "MeasureImageQuality",
                               "MeasureImageFocus", "ExportToSpreadsheet"], start=1):
    module = instantiate_module(name); module.set_module_num(number); pipeline.add_module(module)
m = {module.module_name: module for module in pipeline.modules()}
m["NamesAndTypes"].assignment_method.value = "All images"
m["NamesAndTypes"].single_image_provider.value = "DNA"
quality = m["MeasureImageQuality"]
quality.images_choice.value = "Select..."
group = quality.image_groups[0]
group.image_names.value = "DNA"
group.check_blur.value, group.check_saturation.value = True, False
group.check_intensity.value, group.calculate_threshold.value = False, False
m["MeasureImageFocus"].images[0].image_name.value = "DNA"
m["ExportToSpreadsheet"].wants_overwrite_without_warning.value = True
with open(sys.argv[2], "w") as fd:
    pipeline.dump(fd, save_image_plane_details=False)
"""

TIMING = re.compile(r"Image # (\d+), module (\w+) # \d+: CPU_time = ([\d.]+) secs, Wall_time = ([\d.]+) secs")


def run(cellprofiler_python, n_images):
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        images, plugins, out = scratch / "images", scratch / "plugins", scratch / "out"
        images.mkdir()
        for i, image in enumerate(test_images((2048, 2048), n_images)):
            tifffile.imwrite(images / f"typical_{i:02d}.tif", image)
        tifffile.imwrite(images / "zz_dense.tif", dense_image((2048, 2048)))
        subprocess.run([sys.executable, "-m", "model", "cellprofiler-plugin", str(plugins)], check=True,
                       capture_output=True, cwd=ROOT)
        pipeline = scratch / "pipeline.cppipe"
        subprocess.run([cellprofiler_python, "-c", BUILD_PIPELINE, str(plugins), str(pipeline)], check=True,
                       capture_output=True, cwd=scratch)
        command = [cellprofiler_python, "-m", "cellprofiler", "-c", "-r", "-p", str(pipeline), "-i", str(images),
                   "-o", str(out), "--plugins-directory", str(plugins)]
        major = subprocess.run([cellprofiler_python, "-c", "import cellprofiler_core as c; print(c.__version__)"],
                               capture_output=True, text=True, cwd=scratch).stdout.strip().split(".")[0]
        if major and int(major) >= 5:
            command += ["-e", "imageio_reader"]
        proc = subprocess.run(command, capture_output=True, text=True, cwd=scratch)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        return [(int(n), module, float(cpu), float(wall))
                for n, module, cpu, wall in TIMING.findall(proc.stdout + proc.stderr)], n_images


def report(cellprofiler_python, n_images):
    timings, n_typical = run(cellprofiler_python, n_images)
    rows = []
    for label, numbers in (("typical 2048x2048 field", range(2, n_typical + 1)),  # image 1 loads the models
                           ("2048x2048, cells in every patch", [n_typical + 1])):
        cells = []
        for module in ("MeasureImageQuality", "MeasureImageFocus"):
            picked = [(cpu, wall) for n, m, cpu, wall in timings if m == module and n in numbers]
            cells.append(tuple(sum(v) / len(picked) for v in zip(*picked)))
        (q_cpu, q_wall), (f_cpu, f_wall) = cells
        rows.append(f"| {label} | {q_cpu:.2f} | {q_wall:.2f} | {f_cpu:.2f} | {f_wall:.2f} | {f_cpu / q_cpu:.2f} |")
    first = [(m, cpu, wall) for n, m, cpu, wall in timings if n == 1 and m.startswith("Measure")]
    return "\n".join(
        ["## MeasureImageFocus against MeasureImageQuality (blur) in one CellProfiler pipeline", "",
         f"CellProfiler in {Path(cellprofiler_python).parent.parent.name}, headless; per image, seconds "
         f"(typical: mean of images 2-{n_typical}; the first image also loads the model):", "",
         "| image | MeasureImageQuality (blur) ExecutionTime | its wall time | MeasureImageFocus ExecutionTime "
         "| its wall time | Focus / Quality ExecutionTime |", "|---|---|---|---|---|---|", *rows, "",
         "First image: " + ", ".join(f"{m} {cpu:.2f} s CPU / {wall:.2f} s wall" for m, cpu, wall in first)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cellprofiler-python", default=str(ROOT / ".venv-cp4-app" / "bin" / "python"))
    parser.add_argument("--images", type=int, default=8, help="typical fields (default 8)")
    args = parser.parse_args(argv)
    print(report(args.cellprofiler_python, args.images))


if __name__ == "__main__":
    main()
