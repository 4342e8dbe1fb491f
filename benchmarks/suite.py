"""The speed and scale benchmarks, all in one run; prints (and writes) a markdown report.

    python -m benchmarks.suite                    # ~10 min on 2 cores; --images 20 for a quick run
    python -m benchmarks.suite --output benchmarks/RESULTS.md

Measured in the same run, on the same images:

1. model loading (TensorFlow import + SavedModel load), in a fresh process;
2. throughput of whole-image assessment at 696x520, 1280x1024 and 2048x2048, one
   image and a batch, for the shipped model, the paper's architecture (same
   framework, untrained weights time the same) and PLLS (the NumPy port of
   CellProfiler's PowerLogLogSlope), with ratios;
3. cost against image size (seconds per megapixel should stay flat);
4. ``focus-quality predict`` with 1 and 2 worker processes;
5. memory of a 10,000-image ``focus-quality predict`` run against a 1,000-image
   one (streaming keeps it flat).
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tifffile  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "bbbc006_a01_s1_w1_infocus.tif"
SIZES = [(520, 696), (1024, 1280), (2048, 2048)]


def test_images(shape, count, seed=0):
    """``count`` different images of ``shape``: random flips and shifts of the tiled real sample."""
    base = tifffile.imread(SAMPLE)
    reps = (-(-shape[0] // base.shape[0]) + 1, -(-shape[1] // base.shape[1]) + 1)
    tiled = np.tile(base, reps)
    rng = np.random.default_rng(seed)
    for _ in range(count):
        r, c = rng.integers(0, base.shape[0]), rng.integers(0, base.shape[1])
        image = tiled[r:r + shape[0], c:c + shape[1]]
        yield image[::-1] if rng.random() < 0.5 else image


def timed(function, images):
    start = time.perf_counter()
    for image in images:
        function(image)
    return time.perf_counter() - start


def methods(paper_dir):
    from model import load_model, predict
    from model.training.plls import power_log_log_slope

    ours, paper = load_model(), load_model(paper_dir)
    return {"this model": lambda im: predict(im, model=ours),
            "paper architecture": lambda im: predict(im, model=paper),
            "PLLS": power_log_log_slope}


def throughput(n_images):
    """Rows of (size, method, single-image s, batch images/s, batch MP/s)."""
    from model.training.architectures import build
    from model.training.export import export_saved_model

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        funcs = methods(export_saved_model(build("paper"), Path(tmp) / "paper"))
        for shape in SIZES:
            images = list(test_images(shape, n_images))
            for name, function in funcs.items():
                function(images[0])  # warm-up (graph tracing, FFT plans)
                single = statistics.median(timed(function, [im]) for im in images[:3])
                batch = timed(function, images)
                rows.append((shape, name, single, n_images / batch, n_images * shape[0] * shape[1] / 1e6 / batch))
    return rows


def load_times():
    code = ("import time, os; os.environ['TF_CPP_MIN_LOG_LEVEL']='2'; t=time.perf_counter(); import tensorflow;"
            "t1=time.perf_counter(); from model import load_model; load_model(); t2=time.perf_counter();"
            "print(t1-t, t2-t1)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return tuple(float(v) for v in out.stdout.split()[-2:])


class PeakMemory:
    """Peak summed RSS of a process and its children, sampled every 50 ms."""

    def __init__(self, pid):
        import psutil

        self.process, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.process] + self.process.children(recursive=True)
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.05)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peak / 2 ** 20


def run_predict(inputs, output, workers):
    """Wall time and peak RSS (MiB) of ``focus-quality predict --no-png`` on a folder."""
    command = [sys.executable, "-m", "model.cli", "predict", str(inputs), "-o", str(output), "--no-png",
               "--no-progress", "--workers", str(workers)]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    memory = PeakMemory(proc.pid)
    if proc.wait() != 0:
        raise RuntimeError(f"{' '.join(command)} failed with {proc.returncode}")
    return time.perf_counter() - start, memory.stop()


def write_images(folder, shape, count, distinct=None):
    """``count`` TIFFs; beyond ``distinct`` real files the rest are links to them (disk stays small)."""
    folder.mkdir(parents=True)
    distinct = count if distinct is None else distinct
    for i, image in enumerate(test_images(shape, distinct, seed=1)):
        tifffile.imwrite(folder / f"img{i:05d}.tif", image)
    for i in range(distinct, count):
        os.symlink(folder / f"img{i % distinct:05d}.tif", folder / f"img{i:05d}.tif")
    return folder


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, {'GPU: ' + str(len(gpus)) if gpus else 'no GPU'}; "
            f"Python {platform.python_version()}, TensorFlow {tf.__version__}")


def report(n_images, stream_images):
    lines = [f"Machine: {machine()}", ""]
    tf_import, load = load_times()
    lines += [f"Model loading, fresh process: TensorFlow import {tf_import:.1f} s, SavedModel load {load:.2f} s "
              "(once per process; not in the timings below).", ""]
    rows = throughput(n_images)
    lines += [f"Whole-image assessment, one image (median of 3) and a batch of {n_images} different images:", "",
              "| image | method | one image (s) | batch: images/s | batch: MP/s | this model is faster by |",
              "|---|---|---|---|---|---|"]
    ours = {shape: ips for shape, name, _, ips, _ in rows if name == "this model"}
    for shape, name, single, ips, mps in rows:
        ratio = "" if name == "this model" else f"{ours[shape] / ips:.1f}x"
        lines.append(f"| {shape[1]}x{shape[0]} | {name} | {single:.3f} | {ips:.1f} | {mps:.1f} | {ratio} |")
    lines += ["", "Cost against size (seconds per megapixel, batch; flat = linear in pixels):", "",
              "| method | " + " | ".join(f"{w}x{h}" for h, w in SIZES) + " |", "|---|" + "---|" * len(SIZES)]
    for method in ("this model", "paper architecture", "PLLS"):
        cells = [f"{1 / mps:.3f}" for _, name, _, _, mps in rows if name == method]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = write_images(tmp / "workers", SIZES[1], n_images)
        lines += ["", f"`focus-quality predict --no-png` on {n_images} images of 1280x1024 (wall time, including "
                      "start-up and model loading in each worker):", "",
                  "| workers | seconds | images/s | peak memory (MiB) |", "|---|---|---|---|"]
        timings = {}
        for workers in (1, 2):
            seconds, peak = run_predict(inputs, tmp / f"out{workers}", workers)
            timings[workers] = seconds
            lines.append(f"| {workers} | {seconds:.1f} | {n_images / seconds:.1f} | {peak:.0f} |")
        lines += ["", f"2 workers vs 1: {timings[1] / timings[2]:.2f}x"]
        small = (256, 256)
        lines += ["", f"Streaming: `focus-quality predict --no-png --workers 2` on {small[1]}x{small[0]} images "
                      "(memory must not grow with the number of images):", "",
                  "| images | seconds | images/s | peak memory (MiB) |", "|---|---|---|---|"]
        peaks = {}
        for count in (stream_images // 10, stream_images):
            folder = write_images(tmp / f"stream{count}", small, count, distinct=100)
            seconds, peaks[count] = run_predict(folder, tmp / f"stream_out{count}", 2)
            lines.append(f"| {count} | {seconds:.1f} | {count / seconds:.0f} | {peaks[count]:.0f} |")
        counts = sorted(peaks)
        lines += ["", f"Peak memory ratio {counts[1]} vs {counts[0]} images: {peaks[counts[1]] / peaks[counts[0]]:.2f}"]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100, help="images per batch (default 100)")
    parser.add_argument("--stream-images", type=int, default=10000, help="images in the streaming run")
    parser.add_argument("--output", type=Path, help="also write the report to this markdown file")
    args = parser.parse_args(argv)
    text = report(args.images, args.stream_images)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
