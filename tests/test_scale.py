"""Whole-screen runs: worker processes, resuming after an interruption, and a Dask cluster give the same numbers."""
import csv
import subprocess
import sys

import pytest

from .conftest import ROOT, SAMPLES, require_host


def predict_cli(*args):
    return subprocess.run([sys.executable, "-m", "model.cli", "predict", *map(str, args), "--no-progress"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)


def rows(folder, name="results.csv"):
    with open(folder / name, newline="") as fd:
        table = list(csv.DictReader(fd))
    for row in table:  # the PNG path names the output folder; everything else must match
        row.pop("annotated", None)
    return table


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    for path in sorted(SAMPLES.glob("*.tif")):
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.tif").write_bytes(b"II*\x00 not really a tiff")
    return sorted(folder.iterdir())


@pytest.fixture(scope="module")
def single_process(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    proc = predict_cli(*inputs, "-o", out, "--workers", "1")
    assert proc.returncode == 1, proc.stderr[-2000:]  # the broken file
    return out


def test_worker_processes_write_the_same_numbers(inputs, single_process, tmp_path):
    proc = predict_cli(*inputs, "-o", tmp_path, "--workers", "2")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert rows(tmp_path) == rows(single_process)
    assert rows(tmp_path, "patches.csv") == rows(single_process, "patches.csv")
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(p.name for p in single_process.glob("*.png"))


def test_resume_after_an_interruption_skips_finished_files(inputs, single_process, tmp_path):
    # An interrupted run: the first file finished, the second was cut off while its rows were being written.
    done = rows(single_process)[0]["path"]
    for name in ("results.csv", "patches.csv"):
        lines = (single_process / name).read_text().splitlines(keepends=True)
        kept = [lines[0]] + [line for line in lines[1:] if line.startswith(done + ",")]
        unfinished = next(line for line in lines[1:] if not line.startswith(done + ","))
        (tmp_path / name).write_text("".join(kept) + unfinished[:25])
    proc = predict_cli(*inputs, "-o", tmp_path, "--resume", "--workers", "1")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "1 of 4 files are already in the results" in proc.stderr
    assert rows(tmp_path) == rows(single_process)
    assert rows(tmp_path, "patches.csv") == rows(single_process, "patches.csv")
    # Nothing left to do: a second resume changes nothing.
    predict_cli(*inputs, "-o", tmp_path, "--resume", "--workers", "1")
    assert rows(tmp_path) == rows(single_process)


def test_dask_cluster_writes_the_same_numbers(inputs, single_process, tmp_path):
    require_host("distributed", "dask.distributed (the dask extra)")
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        proc = predict_cli(*inputs, "-o", tmp_path, "--scheduler", cluster.scheduler_address)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert rows(tmp_path) == rows(single_process)
    assert rows(tmp_path, "patches.csv") == rows(single_process, "patches.csv")


def test_bad_worker_count_is_a_usage_error(inputs, tmp_path):
    proc = predict_cli(inputs[0], "-o", tmp_path, "--workers", "0")
    assert proc.returncode == 2 and "--workers must be at least 1" in proc.stderr
