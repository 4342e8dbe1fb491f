"""End to end: the `focus-quality` command on real images, bad files included."""
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from model import predict
from model.batch import PATCH_COLUMNS, RESULT_COLUMNS

from .conftest import IN_FOCUS, OUT_OF_FOCUS, SAMPLES, focal_stack

REQUIRED = (["path", "plane", "predicted_level", "expected_level", "in_focus", "aggregate_certainty",
             "mean_certainty", "max_certainty", "weighted_certainty", "patch_count"]
            + [f"probability_{k}" for k in range(11)] + ["error"])


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "model", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, in_focus_image):
    folder = tmp_path_factory.mktemp("inputs")
    for sample in (IN_FOCUS, OUT_OF_FOCUS):
        shutil.copy(sample, folder)
    (folder / "broken.tif").write_text("not an image")
    Image.fromarray(np.dstack([np.arange(100 * 100, dtype=np.uint8).reshape(100, 100),
                               np.zeros((100, 100), np.uint8), np.full((100, 100), 9, np.uint8)])).save(folder / "colour.png")
    tifffile.imwrite(folder / "tiny.tif", np.zeros((50, 50), np.uint16))
    tifffile.imwrite(folder / "nan.tif", np.full((100, 100), np.nan, np.float32))
    tifffile.imwrite(folder / "stack.tif", focal_stack(in_focus_image), compression="lzw", photometric="minisblack")
    return folder


@pytest.fixture(scope="module")
def predicted(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    proc = run_cli("predict", inputs, str(inputs / "missing*.tif"), "--output", out)
    return proc, out


def test_exit_status_reports_failures(predicted):
    proc, _ = predicted
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "3 of 8 files assessed" in proc.stdout


def test_results_csv_columns_and_values(predicted, shipped_model, in_focus_image):
    _, out = predicted
    rows = read_rows(out / "results.csv")
    assert list(rows[0]) == RESULT_COLUMNS and set(REQUIRED) <= set(rows[0])
    by_name = {Path(r["path"]).name: r for r in rows if r["plane"] in ("", "0")}
    sharp = by_name[IN_FOCUS.name]
    expected = predict(in_focus_image)
    assert int(sharp["predicted_level"]) == expected.predicted_level
    assert float(sharp["aggregate_certainty"]) == pytest.approx(expected.certainties["aggregate"], abs=1e-5)
    assert float(sharp["probability_0"]) == pytest.approx(expected.probabilities[0], abs=1e-5)
    assert sharp["in_focus"] == str(expected.in_focus) and sharp["error"] == ""
    assert int(sharp["predicted_level"]) < int(by_name[OUT_OF_FOCUS.name]["predicted_level"])
    assert Path(sharp["annotated"]).is_file()


@pytest.mark.parametrize("name, message", [
    ("broken.tif", "not a TIFF file"), ("colour.png", "colour (RGB)"), ("tiny.tif", "smaller than one"),
    ("nan.tif", "NaN"), ("missing*.tif", "no such file")])
def test_bad_files_get_an_error_row(predicted, name, message):
    _, out = predicted
    row = next(r for r in read_rows(out / "results.csv") if Path(r["path"]).name == name)
    assert message in row["error"] and row["predicted_level"] == ""


def test_float_counts_are_refused_with_the_option_that_reads_them(tmp_path, in_focus_image):
    path = tmp_path / "counts.tif"
    tifffile.imwrite(path, in_focus_image.astype(np.float32))  # raw counts saved as 32-bit floats
    refused = run_cli("predict", path, "-o", tmp_path / "refused", "--no-png")
    assert refused.returncode == 1, refused.stderr
    row, = read_rows(tmp_path / "refused" / "results.csv")
    assert row["error"].startswith(f"{path} values span 106..1971, outside 0..1")
    assert row["error"].endswith("Pass --max-value 65535 if the values are raw camera counts.")
    assert row["error"] in refused.stderr
    read = run_cli("predict", path, "-o", tmp_path / "read", "--no-png", "--max-value", "65535")
    assert read.returncode == 0, read.stderr
    row, = read_rows(tmp_path / "read" / "results.csv")
    assert float(row["expected_level"]) == pytest.approx(predict(in_focus_image).expected_level, abs=1e-5)


def test_stack_planes_and_best_plane(predicted):
    _, out = predicted
    rows = [r for r in read_rows(out / "results.csv") if Path(r["path"]).name == "stack.tif"]
    assert [r["plane"] for r in rows] == ["0", "1", "2"]
    assert [r["best_plane"] for r in rows] == ["False", "True", "False"]
    assert all(Path(r["annotated"]).is_file() for r in rows)


def test_hyperstack_rows_carry_channel_and_z_and_one_best_plane_per_channel(tmp_path, in_focus_image):
    zcyx = np.stack([[plane, plane[:, ::-1]] for plane in focal_stack(in_focus_image)])
    tifffile.imwrite(tmp_path / "hyper.tif", zcyx, imagej=True, metadata={"axes": "ZCYX"})
    proc = run_cli("predict", tmp_path / "hyper.tif", "-o", tmp_path / "out", "--no-png", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(tmp_path / "out" / "results.csv")
    assert [(r["plane"], r["channel"], r["z"], r["t"]) for r in rows] == [
        (str(2 * z + c), str(c), str(z), "") for z in range(3) for c in range(2)]
    assert [(r["channel"], r["z"]) for r in rows if r["best_plane"] == "True"] == [("0", "1"), ("1", "1")]
    patches = read_rows(tmp_path / "out" / "patches.csv")
    assert {(p["channel"], p["z"]) for p in patches} == {(str(c), str(z)) for z in range(3) for c in range(2)}
    one = run_cli("predict", tmp_path / "hyper.tif", "-o", tmp_path / "one", "--no-png", "--channel", "1", "--z", "0")
    assert one.returncode == 0, one.stderr
    assert [(r["channel"], r["z"]) for r in read_rows(tmp_path / "one" / "results.csv")] == [("1", "0")]


def test_unlabelled_axes_fail_the_file_with_the_option_to_use(tmp_path):
    tifffile.imwrite(tmp_path / "u.tif", np.zeros((2, 3, 100, 100), np.uint16), photometric="minisblack")
    proc = run_cli("predict", tmp_path / "u.tif", "-o", tmp_path / "out", "--no-png")
    assert proc.returncode == 1 and "--axes" in read_rows(tmp_path / "out" / "results.csv")[0]["error"]
    proc = run_cli("predict", tmp_path / "u.tif", "-o", tmp_path / "ok", "--no-png", "--axes", "CZYX")
    assert proc.returncode == 0 and len(read_rows(tmp_path / "ok" / "results.csv")) == 6


def test_the_terminal_shows_no_tensorflow_banners(tmp_path):
    proc = run_cli("predict", IN_FOCUS, OUT_OF_FOCUS, "-o", tmp_path, "--no-png", "--workers", "2", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert not any(word in proc.stderr for word in ("oneDNN", "cpu_feature_guard", "absl", "tensorflow"))
    verbose = run_cli("-v", "predict", IN_FOCUS, "-o", tmp_path / "v", "--no-png", "--workers", "1")
    assert "oneDNN" in verbose.stderr  # still there for whoever asks


def test_patches_csv(predicted):
    _, out = predicted
    results = [r for r in read_rows(out / "results.csv") if not r["error"]]
    patches = read_rows(out / "patches.csv")
    assert list(patches[0]) == PATCH_COLUMNS
    assert len(patches) == sum(int(r["patch_count"]) for r in results)


def test_annotated_png_is_the_image_plus_legend(predicted):
    _, out = predicted
    png = np.asarray(Image.open(out / f"{IN_FOCUS.stem}.focus.png"))
    assert png.shape[1] == 696 and png.shape[0] > 520 and png.shape[2] == 3


def test_summarize_writes_plots(predicted):
    _, out = predicted
    proc = run_cli("summarize", out)
    assert proc.returncode == 0, proc.stderr
    for name in ("level_histogram.png", "certainty_scatter.png", "patch_montage.png"):
        assert (out / "summary" / name).stat().st_size > 1000


def test_summarize_without_results(tmp_path):
    proc = run_cli("summarize", tmp_path)
    assert proc.returncode == 2 and "run `focus-quality predict" in proc.stderr


def test_bad_model_path_stops_cleanly(tmp_path):
    proc = run_cli("predict", IN_FOCUS, "--output", tmp_path / "o", "--model", tmp_path / "nomodel")
    assert proc.returncode == 2 and "no SavedModel" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [[], ["predict"], ["summarize"]])
def test_help(command):
    proc = run_cli(*command, "--help")
    assert proc.returncode == 0 and "usage: focus-quality" in proc.stdout


def test_console_script_installed():
    script = Path(sys.executable).parent / "focus-quality"
    assert script.is_file(), "install the package (pip install -e .) to get the focus-quality command"
    assert subprocess.run([script, "--help"], capture_output=True).returncode == 0


def test_sample_folder_run(tmp_path):
    proc = run_cli("predict", SAMPLES, "--output", tmp_path, "--no-png", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert len(read_rows(tmp_path / "results.csv")) == 3
