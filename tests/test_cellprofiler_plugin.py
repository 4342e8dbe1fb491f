"""MeasureImageFocus in real CellProfiler: the module API in-process, and the headless `cellprofiler` command."""
import csv
import io
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from model import predict

from .conftest import IN_FOCUS, OUT_OF_FOCUS, ROOT, require_host

require_host("cellprofiler_core", "CellProfiler")

import cellprofiler_core.preferences as cpprefs  # noqa: E402

PLUGINS = ROOT / "cellprofiler_plugin"
PIPELINE = ROOT / "examples" / "measure_focus.cppipe"
cpprefs.set_headless()
cpprefs.set_plugin_directory(str(PLUGINS), globally=False)

import cellprofiler_core.modules  # noqa: E402,F401  (module discovery, after the plugin folder is set)
from cellprofiler_core.constants.measurement import IMAGE  # noqa: E402
from cellprofiler_core.image import Image, ImageSetList  # noqa: E402
from cellprofiler_core.measurement import Measurements  # noqa: E402
from cellprofiler_core.object import ObjectSet  # noqa: E402
from cellprofiler_core.pipeline import Pipeline  # noqa: E402
from cellprofiler_core.utilities.core.modules import get_module_names, instantiate_module  # noqa: E402
from cellprofiler_core.workspace import Workspace  # noqa: E402

from cellprofiler_plugin._versions import headless_command  # noqa: E402


def load_pipeline(text):
    pipeline = Pipeline()
    pipeline.load(io.StringIO(text))
    return pipeline


def focus_module(pipeline):
    return next(m for m in pipeline.modules() if m.module_name == "MeasureImageFocus")


def run_module(module, images):
    """Run the module on ``{name: (float pixels, scale)}`` as NamesAndTypes would hand them over."""
    image_set_list = ImageSetList()
    image_set = image_set_list.get_image_set(0)
    for name, (pixels, scale) in images.items():
        image_set.add(name, Image(pixels, scale=scale))
    measurements = Measurements()
    pipeline = Pipeline()
    module.set_module_num(1)
    pipeline.add_module(module)
    workspace = Workspace(pipeline, module, image_set, ObjectSet(), measurements, image_set_list)
    module.run(workspace)
    return workspace


def new_module(*image_names, overlay=False, patches=False):
    module = instantiate_module("MeasureImageFocus")
    while len(module.images) < len(image_names):
        module.add_image()
    for group, name in zip(module.images, image_names):
        group.image_name.value = name
        group.wants_overlay.value = overlay
        group.overlay_name.value = f"Overlay{name}"
        group.wants_patches.value = patches
        group.patches_name.value = f"Patches{name}"
    return module


def test_discovered_without_importing_tensorflow():
    # CellProfiler instantiates every plugin at start-up: that must not pay for a TensorFlow import.
    code = (
        "import sys, cellprofiler_core.preferences as p; p.set_headless();"
        f"p.set_plugin_directory({str(PLUGINS)!r}, globally=False);"
        "import cellprofiler_core.modules;"
        "from cellprofiler_core.utilities.core.modules import instantiate_module as i;"
        "i('MeasureImageFocus'); print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "MeasureImageFocus" in get_module_names()
    assert out.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_run_matches_core_for_each_bit_depth(in_focus_image, bits):
    # Raw counts at this bit depth, handed over the way NamesAndTypes does: divided by the full scale.
    raw = in_focus_image >> max(0, 16 - bits) if bits > 8 else (in_focus_image // 13).astype(np.uint8)
    scale = float(2 ** bits - 1)
    module = new_module("DNA")
    workspace = run_module(module, {"DNA": (raw / scale, scale)})
    expected = predict(raw).summary()
    m = workspace.measurements
    assert m.get_current_image_measurement("ImageFocus_Score_DNA") == expected["predicted_level"]
    np.testing.assert_allclose(m.get_current_image_measurement("ImageFocus_Certainty_DNA"),
                               expected["aggregate_certainty"], rtol=1e-5)
    np.testing.assert_allclose(m.get_current_image_measurement("ImageFocus_ExpectedLevel_DNA"),
                               expected["expected_level"], rtol=1e-5)
    assert isinstance(m.get_current_image_measurement("ImageFocus_Score_DNA"), float)


def test_columns_categories_and_measurements_agree_with_run(in_focus_image, out_of_focus_image):
    module = new_module("DNA", "Blurred", overlay=True, patches=True)
    workspace = run_module(module, {"DNA": (in_focus_image / 65535, 65535.0),
                                    "Blurred": (out_of_focus_image / 65535, 65535.0)})
    m = workspace.measurements
    columns = module.get_measurement_columns(workspace.pipeline)
    assert len(columns) == len(set(columns))
    for object_name, feature, _ in columns:
        assert m.has_feature(object_name, feature), (object_name, feature)
    written = {(IMAGE, f) for f in m.get_feature_names(IMAGE) if f.startswith("ImageFocus_")}
    for name in ("PatchesDNA", "PatchesBlurred"):
        written |= {(name, f) for f in m.get_feature_names(name)}
    assert written <= {(o, f) for o, f, _ in columns}
    # get_categories / get_measurements / get_measurement_images name the same columns.
    listed = set()
    for object_name in {o for o, _, _ in columns}:
        for category in module.get_categories(workspace.pipeline, object_name):
            for feature in module.get_measurements(workspace.pipeline, object_name, category):
                images = module.get_measurement_images(workspace.pipeline, object_name, category, feature)
                for image in images or [None]:
                    listed.add((object_name, "_".join(p for p in (category, feature, image) if p)))
    assert listed == {(o, f) for o, f, _ in columns}
    assert (m.get_current_image_measurement("ImageFocus_Score_DNA")
            < m.get_current_image_measurement("ImageFocus_Score_Blurred"))


def test_patch_objects_carry_each_patch(in_focus_image):
    module = new_module("DNA", patches=True)
    workspace = run_module(module, {"DNA": (in_focus_image / 65535, 65535.0)})
    result = predict(in_focus_image)
    objects = workspace.object_set.get_objects("PatchesDNA")
    assert objects.count == result.patch_count
    m = workspace.measurements
    assert m.get_current_image_measurement("Count_PatchesDNA") == result.patch_count
    np.testing.assert_array_equal(m.get_current_measurement("PatchesDNA", "ImageFocus_Level"),
                                  np.where(result.patch_empty, np.nan, result.patch_levels))  # NaN: nothing to judge
    np.testing.assert_array_equal(m.get_current_measurement("PatchesDNA", "ImageFocus_Empty"), result.patch_empty)
    np.testing.assert_allclose(m.get_current_measurement("PatchesDNA", "ImageFocus_Certainty"),
                               result.patch_certainties, rtol=1e-5)
    centre_x = m.get_current_measurement("PatchesDNA", "Location_Center_X")
    np.testing.assert_allclose(centre_x, result.patch_origins[:, 1] + 41.5)


def test_fewer_tiles_and_the_overlay_image(in_focus_image):
    module = new_module("DNA", overlay=True)
    module.cover_image.value = False
    module.tile_rows.value, module.tile_columns.value = 2, 3
    workspace = run_module(module, {"DNA": (in_focus_image / 65535, 65535.0)})
    assert workspace.measurements.get_current_image_measurement("ImageFocus_PatchCount_DNA") == 6
    overlay = workspace.image_set.get_image("OverlayDNA").pixel_data
    assert overlay.ndim == 3 and overlay.shape[1] == in_focus_image.shape[1]
    assert overlay.shape[0] > in_focus_image.shape[0]  # the legend strip


def test_unusable_image_gives_nan_and_a_logged_reason(caplog):
    module = new_module("RGB", patches=True)
    with caplog.at_level(logging.WARNING):
        workspace = run_module(module, {"RGB": (np.full((100, 100, 3), 0.5), 255.0)})
    m = workspace.measurements
    assert np.isnan(m.get_current_image_measurement("ImageFocus_Score_RGB"))
    assert m.get_current_image_measurement("ImageFocus_PatchCount_RGB") == 0
    assert m.get_current_image_measurement("Count_PatchesRGB") == 0
    assert "RGB" in caplog.text and "grayscale" in caplog.text


def _damaged_arrays():
    rng = np.random.default_rng(0)
    cells = tifffile.imread(IN_FOCUS) / 65535.0
    nan_plane = cells.copy()
    nan_plane[:200] = np.nan  # a plane a reader half filled
    return {"NaN rows": nan_plane, "all NaN": np.full((300, 300), np.nan), "all zero": np.zeros((300, 300)),
            "infinite": np.where(rng.random(cells.shape) < 0.01, np.inf, cells),
            "boolean": cells > 0.01, "int64": (cells * 65535).astype(np.int64),
            "outside 0-1": cells * 40.0, "one row": np.ones((1, 500))}


@pytest.mark.parametrize("kind", list(_damaged_arrays()))
def test_damaged_arrays_give_nan_or_nothing_to_judge_never_a_wrong_number(kind, caplog):
    """What a damaged file can reach the module as, after CellProfiler's own reader."""
    module = new_module("DNA", overlay=True, patches=True)
    with caplog.at_level(logging.WARNING):
        workspace = run_module(module, {"DNA": (_damaged_arrays()[kind], 65535.0)})
    m = workspace.measurements
    score = m.get_current_image_measurement("ImageFocus_Score_DNA")
    count = m.get_current_image_measurement("ImageFocus_PatchCount_DNA")
    empty = m.get_current_image_measurement("ImageFocus_EmptyPatches_DNA")
    if kind in ("all zero", "int64"):  # black, or black once CellProfiler scales int64 by its range
        assert np.isnan(score) and count == empty > 0
    else:  # refused, with the reason in the log (a mask, values beyond the scale, NaN or infinite pixels)
        assert np.isnan(score) and count == 0, (kind, score, count)
        assert "cannot assess image DNA" in caplog.text


def test_the_window_says_why_an_image_was_not_assessed():
    """The app hides its log, so the reason is in the module's window, in CellProfiler's words."""
    module = new_module("DNA")
    module.show_window = True
    cells = tifffile.imread(IN_FOCUS) / 65535.0
    workspace = run_module(module, {"DNA": (cells * 40.0, None)})  # no recorded scale: floats beyond 1
    (name, overlay, rows), = workspace.display_data.shown
    assert (name, overlay, rows[0]) == ("DNA", None, ("Score", "not assessed"))
    assert rows[1][0] == "Why" and all(label == "" for label, _ in rows[2:])
    why = " ".join(value for _, value in rows[1:])
    assert why.startswith("DNA values span ") and "max_value" not in why
    assert 'RescaleIntensity, "Divide each image by the same value" (65535 if' in why


def test_settings_round_trip_through_the_example_pipeline():
    module = focus_module(load_pipeline(PIPELINE.read_text()))
    values = [s.unicode_value for s in module.settings()]
    assert values == ["Yes", "4", "4", "DNA", "Yes", "FocusOverlay", "Yes", "FocusPatches"]
    out = io.StringIO()
    pipeline = Pipeline()
    pipeline.add_module(module)
    pipeline.dump(out, save_image_plane_details=False)
    again = focus_module(load_pipeline(out.getvalue()))
    assert [s.unicode_value for s in again.settings()] == values


def test_two_images_round_trip():
    module = new_module("DNA", "Actin", overlay=True)
    pipeline = Pipeline()
    pipeline.add_module(module)
    out = io.StringIO()
    pipeline.dump(out, save_image_plane_details=False)
    again = focus_module(load_pipeline(out.getvalue()))
    assert [g.image_name.value for g in again.images] == ["DNA", "Actin"]
    assert [g.overlay_name.value for g in again.images] == ["OverlayDNA", "OverlayActin"]


def test_pipelines_of_the_original_plugin_still_load():
    text = PIPELINE.read_text()
    start = text.index("MeasureImageFocus:")
    end = text.index("\n\n", start)
    old = ("MeasureImageFocus:[module_num:5|svn_version:'Unknown'|variable_revision_number:1|show_window:False|"
           "notes:[]|batch_state:array([], dtype=uint8)|enabled:True|wants_pause:False]\n    Image:DNA")
    module = focus_module(load_pipeline(text[:start] + old + text[end:]))
    assert module.variable_revision_number == 2
    assert module.images[0].image_name.value == "DNA"
    assert module.cover_image.value and not module.images[0].wants_overlay.value


# --- the real headless `cellprofiler` command -------------------------------------------------

def cellprofiler(*args, cwd, expect=(0,)):
    command = headless_command(Path(sys.executable).parent / "cellprofiler")
    # Options go before the command's own: CellProfiler 5's `-e` takes all the values after it.
    proc = subprocess.run(command[:1] + [str(a) for a in args] + command[1:],
                          capture_output=True, text=True, cwd=cwd, timeout=600)
    assert proc.returncode in expect, proc.stderr[-3000:]
    return proc


def read_image_csv(folder):
    with open(Path(folder) / "Focus_Image.csv", newline="") as fd:
        return {row["FileName_DNA"]: row for row in csv.DictReader(fd)}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for path in (IN_FOCUS, OUT_OF_FOCUS):
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def check_rows(rows, names):
    module = new_module("DNA")
    features = [f for _, f, _ in module.get_measurement_columns(None)]
    for name in names:
        row = rows[name]
        assert set(features) <= set(row), sorted(set(features) - set(row))
        expected = predict(tifffile.imread(image_path(name))).summary()
        assert float(row["ImageFocus_Score_DNA"]) == expected["predicted_level"]
        np.testing.assert_allclose(float(row["ImageFocus_Certainty_DNA"]), expected["aggregate_certainty"],
                                   rtol=1e-5)
        np.testing.assert_allclose(float(row["ImageFocus_Probability3_DNA"]), expected["probability_3"],
                                   rtol=1e-4, atol=1e-7)
        assert float(row["ImageFocus_InFocus_DNA"]) == float(expected["in_focus"])


def image_path(name):
    return next(p for p in (IN_FOCUS, OUT_OF_FOCUS) if p.name == name)


def test_headless_run_of_the_example_pipeline(image_folder, tmp_path):
    cellprofiler("-p", PIPELINE, "-i", image_folder, "-o", tmp_path, cwd=tmp_path)
    rows = read_image_csv(tmp_path)
    check_rows(rows, [IN_FOCUS.name, OUT_OF_FOCUS.name])
    assert float(rows[IN_FOCUS.name]["ImageFocus_Score_DNA"]) < float(rows[OUT_OF_FOCUS.name]["ImageFocus_Score_DNA"])
    assert (tmp_path / f"{IN_FOCUS.stem}_focus.png").exists()
    with open(tmp_path / "Focus_FocusPatches.csv", newline="") as fd:
        patches = list(csv.DictReader(fd))
    assert len(patches) == 2 * predict(np.zeros((520, 696), np.uint16)).patch_count


def test_the_plate_report_of_the_example_pipelines_image_csv(tmp_path):
    """`focus-quality report` on the Image.csv the example pipeline exports: wells from the file names."""
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(OUT_OF_FOCUS, images / "P7_B02_s1_w1.tif")
    shutil.copy(IN_FOCUS, images / "P7_C03_s1_w1.tif")
    cellprofiler("-p", PIPELINE, "-i", images, "-o", tmp_path / "out", cwd=tmp_path)
    subprocess.run([sys.executable, "-m", "model", "report", str(tmp_path / "out" / "Focus_Image.csv"), "-o",
                    str(tmp_path / "qc")], check=True, capture_output=True, cwd=ROOT, timeout=300)
    with open(tmp_path / "qc" / "wells.csv", newline="") as fd:
        wells = {row["well"]: row for row in csv.DictReader(fd)}
    assert sorted(wells) == ["B02", "C03"] and {w["plate"] for w in wells.values()} == {"P7"}
    assert wells["B02"]["lost_focus"] == "1" and wells["C03"]["lost_focus"] == "0"
    assert wells["B02"]["channel"] == "DNA"  # CellProfiler's image name, as the pattern's w1 is one channel
    reimage = (tmp_path / "qc" / "out_of_focus.txt").read_text().splitlines()
    assert [Path(p).name for p in reimage] == ["P7_B02_s1_w1.tif"]


def test_batch_file_runs_in_chunks(image_folder, tmp_path):
    # The cluster route: a pipeline ending in CreateBatchFiles writes Batch_data.h5, then each job runs -f/-l.
    pipeline = load_pipeline(PIPELINE.read_text())
    batch = instantiate_module("CreateBatchFiles")
    batch.set_module_num(len(pipeline.modules()) + 1)
    pipeline.add_module(batch)
    with open(tmp_path / "batch.cppipe", "w") as fd:
        pipeline.dump(fd, save_image_plane_details=False)
    # Writing the batch file stops the run on purpose; CellProfiler reports that with exit status 1.
    cellprofiler("-p", tmp_path / "batch.cppipe", "-i", image_folder, "-o", tmp_path, cwd=tmp_path, expect=(0, 1))
    assert (tmp_path / "Batch_data.h5").exists()
    jobs = cellprofiler("--get-batch-commands-new", "Batch_data.h5", "--images-per-batch", "1", cwd=tmp_path)
    chunks = [line.split()[-4:] for line in jobs.stdout.splitlines() if line.startswith("CellProfiler ")]
    assert [c[::2] for c in chunks] == [["-f", "-l"]] * 2
    for name, (_, first, _, last) in zip(sorted([IN_FOCUS.name, OUT_OF_FOCUS.name]), chunks):
        out = tmp_path / f"chunk{first}"
        out.mkdir()
        cellprofiler("-p", "Batch_data.h5", "-o", out, "-f", first, "-l", last, cwd=tmp_path)
        rows = read_image_csv(out)
        assert list(rows) == [name]
        check_rows(rows, [name])
