"""The speed and scale benchmarks, all in one run; prints (and writes) a markdown report.

    python -m benchmarks.suite                    # ~10 min on 2 cores; --images 30 --stream-images 2000: ~4 min
    python -m benchmarks.suite --output benchmarks/RESULTS.md

Measured in the same run, on the same images, so the ratios compare like with like:

1. model loading (TensorFlow import + SavedModel load), in a fresh process;
2. network cost per patch: the shipped network, v1's and the paper's;
3. whole-image assessment at 696x520, 1280x1024 and 2048x2048 for the shipped
   model, v1's network (through this code, and every patch as v1 ran), the
   paper's network (untrained weights time the same), and the bare model call on
   the same patches: what the whole-image path adds to it (PowerLogLogSlope as
   CellProfiler computes it is in ``benchmarks.against_cellprofiler``);
4. peak memory of ``focus-quality predict`` on one 2048x2048, one 16384x16384
   (uncompressed and tiled) and one 32768x32768 (tiled) image;
5. the network in NumPy (CellProfiler's window and app) against TensorFlow;
6. plate throughput: ``focus-quality predict`` on a plate of 2048x2048 fields with 1 and 2 worker
   processes, start-up apart;
7. memory of a 10,000-image run against a 1,000-image one (streaming keeps it flat).
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
BIG = 16384
HUGE = 32768


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


def dense_image(shape, seed=0):
    """An image whose every patch shows cells: the sample's patches that have something to judge, tiled."""
    from model import predict

    sample = tifffile.imread(SAMPLE)
    result = predict(sample)
    blocks = [sample[r:r + 84, c:c + 84] for (r, c), empty in zip(result.patch_origins, result.patch_empty)
              if not empty]
    rng = np.random.default_rng(seed)
    rows, cols = shape[0] // 84, shape[1] // 84
    picks = rng.integers(len(blocks), size=rows * cols)
    grid = np.stack([blocks[i] for i in picks]).reshape(rows, cols, 84, 84).transpose(0, 2, 1, 3)
    return grid.reshape(rows * 84, cols * 84)


#: v1 as it was released sent every patch to its network: no screening of patches with nothing to judge.
V1_RELEASED = "v1 network, every patch (as v1 ran)"


def timed(function, items, repeat=3):
    """Seconds to run ``function`` on every item: the best of ``repeat`` passes, as :mod:`timeit` reports,
    because other tenants of a shared machine only ever add time."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            function(item)
        best = min(best, time.perf_counter() - start)
    return best


def exported(name, folder):
    """A SavedModel of an untrained network (times the same as a trained one)."""
    from model.training.architectures import build
    from model.training.export import export_saved_model

    return export_saved_model(build(name), Path(folder) / name)


def throughput(n_images, folder):
    """Rows of (size, method, single-image s, batch images/s, batch MP/s), and the bare-call rows."""
    from model import load_model, predict
    from model.patches import BATCH_PATCHES, patch_rows, rebatch
    from model.scaling import scale_factor
    from model.tiling import tile_grid

    models = {"this model": load_model(), "this model, float32": load_model(precision="float32"),
              "v1 network": load_model(exported("compact", folder), precision="float32"),
              "paper architecture": load_model(exported("paper", folder), precision="float32")}
    methods = {name: (lambda im, m=m: predict(im, model=m)) for name, m in models.items()}
    methods[V1_RELEASED] = lambda im, m=models["v1 network"]: [
        m.predict_patches(batch)
        for _, batch in rebatch(patch_rows(im, tile_grid(im.shape)[0]), BATCH_PATCHES, scale=scale_factor(im.dtype))]
    rows, bare = [], []
    cases = [(f"{w}x{h}", list(test_images((h, w), n_images))) for h, w in SIZES]
    cases.append(("2048x2048, every patch with cells", [dense_image((2048, 2048), seed) for seed in range(10)]))
    for label, images in cases:
        for name, function in methods.items():
            function(images[0])  # warm-up (graph tracing, FFT plans)
            single = statistics.median(timed(function, [im], repeat=1) for im in images[:3])
            batch = timed(function, images)
            pixels = images[0].size / 1e6
            rows.append((label, name, single, len(images) / batch, len(images) * pixels / batch))
        origins, _ = tile_grid(images[0].shape)
        patches = [next(rebatch(patch_rows(im, origins), len(origins), scale=scale_factor(im.dtype)))[1]
                   for im in images]
        model = models["this model"]
        model.predict_patches(patches[0])
        call = timed(model.predict_patches, patches) / len(images)
        whole = timed(methods["this model"], images) / len(images)
        empty = np.mean([predict(im, model=model).empty_patches / len(origins) for im in images[:5]])
        bare.append((label, len(origins), empty, call, whole))
    return rows, bare


def load_times():
    code = ("import time, os; t=time.perf_counter(); from model.predictor import import_tensorflow;"
            "import_tensorflow(); t1=time.perf_counter(); from model import load_model; load_model();"
            "t2=time.perf_counter(); print(t1-t, t2-t1)")
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


def run_predict(inputs, output, workers, *extra):
    """Wall time and peak RSS (MiB) of ``focus-quality predict`` on a file or folder."""
    command = [sys.executable, "-m", "model.cli", "predict", str(inputs), "-o", str(output), "--no-progress",
               "--workers", str(workers), *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    memory = PeakMemory(proc.pid)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with {proc.returncode}: {err.decode()[-500:]}")
    return time.perf_counter() - start, memory.stop()


def plate_throughput(folder, n_images, repeat=2):
    """``predict --no-png`` on half a plate and on all of it, for 1 and 2 workers: start-up and images/s apart.

    The run on ``n_images`` minus the run on half as many is the time of the second half alone, without
    start-up; best of ``repeat``. The files are distinct 2048x2048 fields, uncompressed as HCS instruments
    write them.
    """
    half = n_images // 2
    write_images(folder / "all", (2048, 2048), n_images)
    (folder / "half").mkdir()
    for path in sorted((folder / "all").iterdir())[:half]:
        os.symlink(path, folder / "half" / path.name)
    lines = ["", f"Plate throughput: `focus-quality predict --no-png` on {n_images} typical 2048x2048 fields "
                 f"(uncompressed TIFFs) and on {half} of them; the difference is {n_images - half} images without "
                 f"start-up (best of {repeat}):", "",
             "| workers | start-up (s) | images/s | whole run (s) | peak memory (MiB) |", "|---|---|---|---|---|"]
    rates = {}
    for workers in (1, 2):
        runs = {name: min((run_predict(folder / name, folder / f"out{workers}{name}{i}", workers, "--no-png")
                           for i in range(repeat)), key=lambda r: r[0]) for name in ("half", "all")}
        rates[workers] = (n_images - half) / (runs["all"][0] - runs["half"][0])
        start_up = runs["half"][0] - half / rates[workers]
        lines.append(f"| {workers} | {start_up:.1f} | {rates[workers]:.1f} | {runs['all'][0]:.1f} "
                     f"| {runs['all'][1]:.0f} |")
    lines += ["", f"2 workers vs 1, start-up aside: {rates[2] / rates[1]:.2f}x; one image alone "
                  "(`predict` in one process, above): see the 2048x2048 row"]
    return lines


def write_big_tiff(path, side, *, tile=None):
    """A ``side`` x ``side`` uint16 TIFF of the tiled sample, written block by block (never whole in memory)."""
    block = np.tile(tifffile.imread(SAMPLE), (2, 2))[:1024, :1024]
    if tile is None:  # one contiguous strip, written row band by row band
        with tifffile.TiffWriter(path, bigtiff=True) as tif:
            tif.write(shape=(side, side), dtype=np.uint16, photometric="minisblack",
                      data=(np.tile(block, (1, side // 1024)) for _ in range(side // 1024)), rowsperstrip=1024)
    else:
        tiles = (block[:tile, :tile] for _ in range((side // tile) ** 2))
        with tifffile.TiffWriter(path, bigtiff=True) as tif:
            tif.write(tiles, shape=(side, side), dtype=np.uint16, tile=(tile, tile), photometric="minisblack")
    return path


def memory_report(folder):
    folder = Path(folder)
    files = [("2048x2048, uncompressed", write_big_tiff(folder / "m2k.tif", 2048)),
             (f"{BIG}x{BIG}, uncompressed", write_big_tiff(folder / "m16k.tif", BIG)),
             (f"{BIG}x{BIG}, tiled 512", write_big_tiff(folder / "m16k_tiled.tif", BIG, tile=512)),
             (f"{HUGE}x{HUGE}, tiled 512 (2 GB of pixels)", write_big_tiff(folder / "m32k_tiled.tif", HUGE, tile=512))]
    rows = []
    for label, path in files:
        seconds, peak = run_predict(path, folder / f"out_{path.stem}", 1)
        rows.append((label, seconds, peak))
        path.unlink()
    return rows


def backend_cost(n_images):
    """Per-image seconds with the network in TensorFlow and in NumPy (CellProfiler's window and the app)."""
    from model import load_model, predict

    models = [load_model(backend=backend) for backend in ("tensorflow", "numpy")]
    rows = []
    for h, w in (SIZES[0], SIZES[2]):
        images = list(test_images((h, w), n_images))
        seconds = []
        for model in models:
            predict(images[0], model=model)
            seconds.append(timed(lambda im: predict(im, model=model), images) / len(images))
        rows.append((f"{w}x{h}", *seconds))
    dense = dense_image(SIZES[2])
    rows.append(("2048x2048, cells in every patch",
                 *(timed(lambda im: predict(im, model=model), [dense]) for model in models)))
    return rows


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
    from model.predictor import import_tensorflow

    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, {'GPU: ' + str(len(gpus)) if gpus else 'no GPU'}; "
            f"Python {platform.python_version()}, TensorFlow {tf.__version__}")


def report(n_images, stream_images, plate_images):
    from benchmarks.inference_cost import report as network_report

    lines = [f"Machine: {machine()}", ""]
    tf_import, load = load_times()
    lines += [f"Model loading, fresh process: TensorFlow import {tf_import:.1f} s, SavedModel load {load:.2f} s "
              "(once per process; not in the timings below).", "",
              "Network cost per 84x84 patch (`python -m benchmarks.inference_cost`):", "", network_report(), ""]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows, bare = throughput(n_images, tmp)
        lines += [f"Whole-image assessment, one image (median of 3) and a batch of {n_images} different images "
                  "(10 for the image with cells in every patch; batch timings here and below are the best of 3 "
                  "passes):", "",
                  "| image | method | one image (s) | batch: images/s | batch: MP/s | this model is faster by |",
                  "|---|---|---|---|---|---|"]
        ours = {label: ips for label, name, _, ips, _ in rows if name == "this model"}
        for label, name, single, ips, mps in rows:
            ratio = "" if name == "this model" else f"{ours[label] / ips:.1f}x"
            lines.append(f"| {label} | {name} | {single:.3f} | {ips:.1f} | {mps:.1f} | {ratio} |")
        lines += ["", "What the whole-image path costs next to the bare model call on the same patches (one "
                      "`predict_patches` call with every patch, already cut out and scaled). The whole-image path "
                      "reads, cuts out, scales and screens the patches, and sends only those with something to "
                      "judge to the network:", "",
                  "| image | patches | with nothing to judge | bare model call (s) | whole image (s) | "
                  "whole / bare |", "|---|---|---|---|---|---|"]
        for label, patches, empty, call, whole in bare:
            lines.append(f"| {label} | {patches} | {empty:.0%} | {call:.3f} | {whole:.3f} | {whole / call:.2f} |")
        memory = memory_report(tmp)
        lines += ["", "Peak memory (RSS) of `focus-quality predict` on one large image (annotated PNG included, "
                      "drawn reduced above 4096 px):", "",
                  "| image | seconds | peak memory (MiB) |", "|---|---|---|"]
        lines += [f"| {label} | {seconds:.1f} | {peak:.0f} |" for label, seconds, peak in memory]
        lines += ["", "The network in NumPy (`FOCUS_QUALITY_BACKEND=numpy`: CellProfiler's window, and the "
                      "CellProfiler app, which has no TensorFlow) against TensorFlow, per image:", "",
                  "| image | TensorFlow (s) | NumPy (s) | NumPy / TensorFlow |", "|---|---|---|---|"]
        lines += [f"| {label} | {a:.3f} | {b:.3f} | {b / a:.2f} |" for label, a, b in backend_cost(min(n_images, 30))]
        lines += plate_throughput(tmp / "plate", plate_images)
        small = (256, 256)
        lines += ["", f"Streaming: `focus-quality predict --no-png --workers 2` on {small[1]}x{small[0]} images "
                      "(memory must not grow with the number of images):", "",
                  "| images | seconds | images/s | peak memory (MiB) |", "|---|---|---|---|"]
        peaks = {}
        for count in (stream_images // 10, stream_images):
            folder = write_images(tmp / f"stream{count}", small, count, distinct=100)
            seconds, peaks[count] = run_predict(folder, tmp / f"stream_out{count}", 2, "--no-png")
            lines.append(f"| {count} | {seconds:.1f} | {count / seconds:.0f} | {peaks[count]:.0f} |")
        counts = sorted(peaks)
        lines += ["", f"Peak memory ratio {counts[1]} vs {counts[0]} images: {peaks[counts[1]] / peaks[counts[0]]:.2f}"]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100, help="images per batch (default 100)")
    parser.add_argument("--stream-images", type=int, default=10000, help="images in the streaming run")
    parser.add_argument("--plate-images", type=int, default=200, help="2048x2048 images in the plate run")
    parser.add_argument("--output", type=Path, help="also write the report to this markdown file")
    args = parser.parse_args(argv)
    command = (f"`python -m benchmarks.suite --images {args.images} --stream-images {args.stream_images} "
               f"--plate-images {args.plate_images}`")
    text = f"Run: {command}\n\n" + report(args.images, args.stream_images, args.plate_images)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
