"""A damaged file never stops a screen: each is one error row a user understands, and the run goes on.

Damage as transfers leave it (files cut short, bytes flipped), a reader that hangs (a FIFO,
as on an unreachable disk) and a worker process that dies, then a seeded fuzz suite: mutants
of real files in every supported format, all through `focus-quality predict` in one batch.
"""
import csv
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from . import microscope_files
from .conftest import IN_FOCUS, ROOT

#: What a user may read in an error row: the kind of damage, never a bare library message.
UNDERSTOOD = ("truncated file", "damaged", "not a TIFF", "did not end within", "crashed its process",
              "previous run ended", "cannot be read as", "is a colour", "grayscale", "no plane", "axes",
              "unsupported file type", "too small", "is smaller than", "nothing", "NaN", "values", "data type",
              "is empty")


def predict(inputs, output, *extra, timeout=900):
    proc = subprocess.run([sys.executable, "-m", "model", "predict", *map(str, inputs), "-o", str(output),
                           "--no-png", "--no-progress", *extra], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    with open(Path(output) / "results.csv", newline="") as fd:
        return proc, list(csv.DictReader(fd))


def by_path(rows):
    grouped = {}
    for row in rows:
        grouped.setdefault(Path(row["path"]).name, []).append(row)
    return grouped


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """Real images in three TIFF layouts, and copies of them damaged as transfers damage files."""
    folder = tmp_path_factory.mktemp("damaged")
    image = tifffile.imread(IN_FOCUS)
    tifffile.imwrite(folder / "good_raw.tif", image)
    tifffile.imwrite(folder / "good_zlib.tif", image, compression="zlib")
    tifffile.imwrite(folder / "good_tiled.tif", image, tile=(128, 128), compression="zlib")
    raw, zlib, tiled = ((folder / f"good_{k}.tif").read_bytes() for k in ("raw", "zlib", "tiled"))
    (folder / "cut_zlib.tif").write_bytes(zlib[:len(zlib) // 2])
    (folder / "cut_tiled.tif").write_bytes(tiled[:len(tiled) * 2 // 3])
    for percent in (1, 30, 90):
        (folder / f"cut_raw_{percent}.tif").write_bytes(raw[:len(raw) * percent // 100])
    flipped = bytearray(raw)
    flipped[8:40] = bytes(b ^ 0xFF for b in flipped[8:40])
    (folder / "flipped_header.tif").write_bytes(bytes(flipped))
    (folder / "garbage.tif").write_bytes(b"not an image at all " * 50)
    return folder


@pytest.mark.parametrize("workers", ["1", "2"])
def test_each_damaged_file_is_one_error_row_and_the_good_ones_are_assessed(damaged, tmp_path, workers):
    proc, rows = predict([damaged], tmp_path / "out", "--workers", workers)
    assert proc.returncode == 1
    rows = by_path(rows)
    assert sorted(rows) == sorted(p.name for p in damaged.iterdir())
    for name, (row,) in rows.items():
        if name.startswith("good"):
            assert row["error"] == "" and float(row["expected_level"]) == pytest.approx(1.335, abs=0.01)
        else:
            assert row["error"].startswith(str(damaged / name)), row["error"]
    errors = {name: rows[name][0]["error"] for name in rows}
    assert "truncated file: its header says 520x696 pixels" in errors["cut_raw_30.tif"]
    assert "truncated file (or a damaged header): its pixel data run to" in errors["cut_zlib.tif"]
    assert "truncated file" in errors["cut_tiled.tif"]
    assert "not a TIFF file" in errors["garbage.tif"]
    assert "damaged" in errors["flipped_header.tif"]
    assert all(any(word in e for word in UNDERSTOOD) for e in errors.values() if e)


def test_an_absurd_header_is_refused_before_allocating(tmp_path):
    """A header that claims 60000x60000 pixels (7 GB) in one compressed strip of 1 kB is not decoded."""
    tifffile.imwrite(tmp_path / "small.tif", np.zeros((64, 64), np.uint16), compression="zlib")
    data = bytearray((tmp_path / "small.tif").read_bytes())
    with tifffile.TiffFile(tmp_path / "small.tif") as tif:
        tags = tif.pages[0].tags
        for name in ("ImageWidth", "ImageLength", "RowsPerStrip"):
            tag = tags[name]
            width = 2 if tag.dtype == 3 else 4  # SHORT or LONG, stored in the tag itself
            data[tag.valueoffset:tag.valueoffset + width] = (60000).to_bytes(width, "little")
    (tmp_path / "absurd.tif").write_bytes(bytes(data))
    proc, rows = predict([tmp_path / "absurd.tif"], tmp_path / "out", "--workers", "1", timeout=120)
    assert "damaged header" in rows[0]["error"], rows[0]["error"]


@pytest.mark.parametrize("name, message", [("lzw_decoder_crash.tif", "truncated file (or a damaged header)"),
                                           ("page_loop.tif", "its pages form a loop"),
                                           ("tiff_named_jpg.jpg", "a page header lies past its end"),
                                           ("empty_planes_billions_of_samples.tif", "its planes are 0x0 pixels")])
def test_the_fuzzers_findings_are_error_rows_in_process(damaged, tmp_path, name, message):
    """Files that crashed a decoder or read forever (tests/data/README.md): refused before reading them."""
    found = Path(__file__).with_name("data") / name
    proc, rows = predict([found, damaged / "good_raw.tif"], tmp_path / "out", "--workers", "1", timeout=120)
    rows = by_path(rows)
    assert message in rows[name][0]["error"]
    assert rows["good_raw.tif"][0]["error"] == ""


def test_a_reader_that_hangs_is_replaced_after_the_time_limit(damaged, tmp_path):
    os.mkfifo(tmp_path / "hangs.tif")  # a read that never ends, as on an unreachable network disk
    inputs = [damaged / "good_raw.tif", tmp_path / "hangs.tif", damaged / "good_zlib.tif", damaged / "cut_zlib.tif"]
    start = time.time()
    proc, rows = predict(inputs, tmp_path / "out", "--workers", "2", "--time-limit", "10", timeout=300)
    assert time.time() - start < 120
    rows = by_path(rows)
    assert "did not end within 10" in rows["hangs.tif"][0]["error"]
    assert rows["good_raw.tif"][0]["error"] == rows["good_zlib.tif"][0]["error"] == ""
    assert "truncated file" in rows["cut_zlib.tif"][0]["error"]


def _kill_workers_opening_a_fifo(stop):
    """Kill -9 every worker process of predict that waits to open a FIFO: a decoder that crashes its
    process, each time the file is tried."""
    while not stop.is_set():
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/wchan") as wchan, open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    if wchan.read() == "wait_for_partner" and b"multiprocessing" in cmdline.read():
                        os.kill(int(pid), signal.SIGKILL)
            except OSError:
                continue
        time.sleep(0.2)


def test_a_worker_that_dies_is_replaced_and_only_its_file_is_blamed(damaged, tmp_path):
    fifo = tmp_path / "crashes.tif"
    os.mkfifo(fifo)
    stop = threading.Event()
    threading.Thread(target=_kill_workers_opening_a_fifo, args=(stop,), daemon=True).start()
    goods = [damaged / name for name in ("good_raw.tif", "good_zlib.tif", "good_tiled.tif")]
    try:
        proc, rows = predict([goods[0], fifo, *goods[1:]], tmp_path / "out", "--workers", "2", timeout=600)
    finally:
        stop.set()
    rows = by_path(rows)
    assert "crashed its process" in rows["crashes.tif"][0]["error"]
    for good in goods:
        assert rows[good.name][0]["error"] == "", rows[good.name]


def test_resume_never_stops_twice_on_the_same_file(damaged, tmp_path):
    """An in-process run that a file ends (killed here while it hangs) skips that file when resumed."""
    os.mkfifo(tmp_path / "hangs.tif")
    inputs = [damaged / "good_raw.tif", tmp_path / "hangs.tif", damaged / "good_zlib.tif"]
    command = [sys.executable, "-m", "model", "predict", *map(str, inputs), "-o", str(tmp_path / "out"), "--no-png",
               "--no-progress", "--workers", "1"]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (tmp_path / "out" / ".reading").is_file() or \
            "hangs" not in (tmp_path / "out" / ".reading").read_text():
        time.sleep(0.5)
    first.kill()
    first.wait()
    proc, rows = predict(inputs, tmp_path / "out", "--workers", "1", "--resume", timeout=300)
    rows = by_path(rows)
    assert "previous run ended while reading this file" in rows["hangs.tif"][0]["error"]
    assert rows["good_zlib.tif"][0]["error"] == "" and len(rows["good_raw.tif"]) == 1


# --- the fuzz suite ------------------------------------------------------------------------------

def _real_files(folder):
    """Small real images in every supported format."""
    image = tifffile.imread(IN_FOCUS)[:256, :256]
    stack = np.stack([image, image[::-1]])
    files = {}
    tifffile.imwrite(folder / "raw.tif", image)
    tifffile.imwrite(folder / "zlib.tif", image, compression="zlib")
    tifffile.imwrite(folder / "lzw_strips.tif", image, compression="lzw", rowsperstrip=16)
    tifffile.imwrite(folder / "tiled.tif", image, tile=(64, 64), compression="zlib")
    tifffile.imwrite(folder / "hyperstack.tif", stack[:, None], imagej=True, metadata={"axes": "ZCYX"})
    tifffile.imwrite(folder / "ome.tif", stack, ome=True, metadata={"axes": "ZYX"})
    import imageio.v3 as iio

    iio.imwrite(folder / "image.png", image)
    iio.imwrite(folder / "image.jpg", (image // 256).astype(np.uint8))
    tzcyx = stack[None, :, None]
    for name, write in (("image.nd2", microscope_files.write_nd2), ("image.czi", microscope_files.write_czi)):
        write(folder / name, tzcyx)
    microscope_files.write_lif(folder / "image.lif", [tzcyx])
    microscope_files.write_ome_zarr(folder / "image.zarr", stack[None], axes="czyx")
    for path in folder.iterdir():
        files[path.name] = path
    return files


def _mutants(data, rng, count):
    """Copies of ``data`` cut at many points, with bytes flipped in the header and in the data, size-like
    fields (4-byte little-endian words) set to large values and offsets pointed past the end."""
    size = len(data)
    for k in range(count):
        mutant = bytearray(data)
        kind = k % 5
        if kind == 0:
            mutant = mutant[:max(1, int(size * rng.uniform(0.02, 0.98)))]
        elif kind == 1:
            for i in rng.integers(0, min(size, 256), 6):
                mutant[i] ^= int(rng.integers(1, 256))
        elif kind == 2:
            for i in rng.integers(0, size, 24):
                mutant[i] ^= int(rng.integers(1, 256))
        elif kind == 3:
            i = int(rng.integers(0, max(1, min(size, 512) - 4)))
            mutant[i:i + 4] = int(rng.integers(2**20, 2**31)).to_bytes(4, "little")
        else:
            i = int(rng.integers(0, max(1, min(size, 512) - 4)))
            mutant[i:i + 4] = (size + int(rng.integers(1, 2**16))).to_bytes(4, "little")
        yield bytes(mutant)


def test_fuzzed_files_of_every_format_in_one_batch(tmp_path):
    """Every mutant gets its rows or one error row; nothing hangs; the good files give their numbers alone."""
    pytest.importorskip("nd2"), pytest.importorskip("pylibCZIrw"), pytest.importorskip("readlif")
    (tmp_path / "originals").mkdir()
    originals = _real_files(tmp_path / "originals")
    batch = tmp_path / "batch"
    batch.mkdir()
    rng = np.random.default_rng(20261206)
    for name, path in originals.items():
        if path.is_dir():  # OME-Zarr: mutate its chunk files and its metadata
            for k in range(6):
                copy = shutil.copytree(path, batch / f"m{k}_{name}")
                parts = sorted(p for p in copy.rglob("*") if p.is_file())
                target = parts[int(rng.integers(0, len(parts)))]
                target.write_bytes(next(_mutants(target.read_bytes(), rng, k + 1)))
            shutil.copytree(path, batch / f"good_{name}")
            continue
        for k, mutant in enumerate(_mutants(path.read_bytes(), rng, 10)):
            (batch / f"m{k}_{name}").write_bytes(mutant)
        shutil.copy(path, batch / f"good_{name}")
    inputs = sorted(batch.iterdir())
    start = time.time()
    proc, rows = predict(inputs, tmp_path / "out", "--workers", "2", "--time-limit", "60", timeout=1500)
    elapsed = time.time() - start
    rows = by_path(rows)
    assert sorted(rows) == sorted(p.name for p in inputs)  # every input, once
    for name, file_rows in rows.items():
        errors = [r["error"] for r in file_rows if r["error"]]
        assert not errors or len(file_rows) == 1, (name, file_rows)  # an error row is the file's only row
    for name, file_rows in rows.items():
        for error in (r["error"] for r in file_rows if r["error"]):
            assert any(word in error for word in UNDERSTOOD), (name, error)
    _, alone = predict([p for p in inputs if p.name.startswith("good_")], tmp_path / "alone", "--workers", "1")
    for name, file_rows in by_path(alone).items():
        assert [r["expected_level"] for r in rows[name]] == [r["expected_level"] for r in file_rows], name
        assert all(r["error"] == "" for r in file_rows), file_rows
    failed = sum(any(r["error"] for r in file_rows) for file_rows in rows.values())
    print(f"fuzz: {len(inputs)} files, {failed} error rows, {elapsed:.0f} s")


def test_ctrl_c_is_an_interruption_not_a_damaged_file(tmp_path):
    """Ctrl-C ends the run with status 130 and a hint; --resume then assesses every file, blaming none."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        shutil.copy(IN_FOCUS, folder / f"f{i:03d}.tif")
    command = [sys.executable, "-m", "model", "predict", str(folder), "-o", str(tmp_path / "out"), "--no-png",
               "--no-progress", "--workers", "1"]
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    results = tmp_path / "out" / "results.csv"
    deadline = time.time() + 300
    while time.time() < deadline and (not results.is_file() or len(results.read_text().splitlines()) < 20):
        time.sleep(0.2)
    run.send_signal(signal.SIGINT)
    stderr = run.communicate(timeout=120)[1]
    assert run.returncode == 130 and "--resume" in stderr and "Traceback" not in stderr, stderr[-2000:]
    assert not (tmp_path / "out" / ".reading").exists()
    proc, rows = predict([folder], tmp_path / "out", "--workers", "1", "--resume")
    assert proc.returncode == 0 and len(rows) == 300 and not any(r["error"] for r in rows)
