"""`focus-quality install-fiji`, then ImageJ1 started by its own launcher (``java -jar ij.jar -ijpath DIR``).

Under Xvfb, as a user: the menu is clicked with xdotool, the dialog's OK with the
mouse, and what ImageJ then holds (overlay, table, recorded macro line) is
compared with ``focus-quality fiji`` on the same files. Macros run by ImageJ
itself (``-batch``) check the options string, the errors and the uninstall.
"""
import csv
import math
import re
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import tifffile

from fiji_bridge.install import MACRO_NAME, InstallError, install, uninstall
from fiji_bridge.macro_client import state_path
from fiji_bridge.table import COLUMNS

from . import imagej_launcher as launcher
from . import virtual_display
from .conftest import IN_FOCUS, ROOT, focal_stack, require_host
from .test_fiji_stacks import SHARP_SLICE

roifile = require_host("roifile", "roifile (the fiji extra)")
COMMAND = launcher.COMMAND


@pytest.fixture(scope="module")
def display():
    if not (virtual_display.available() and launcher.available()):
        message = "ImageJ1 (libij-java), Java, Xvfb, xdotool and imagemagick are needed"
        if os.environ.get("FOCUS_QUALITY_REQUIRE_HOSTS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with virtual_display.virtual_display() as env:
        yield env


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = os.environ.get("FOCUS_QUALITY_ARTIFACTS")
    folder = Path(root).resolve() / "fiji-launcher" if root else tmp_path_factory.mktemp("fiji-launcher")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory, in_focus_image):
    path = tmp_path_factory.mktemp("stack") / "focal_series.tif"
    tifffile.imwrite(path, focal_stack(in_focus_image), imagej=True, metadata={"axes": "ZYX"})
    return path


@pytest.fixture()
def imagej_dir(tmp_path):
    """An ImageJ folder with the command installed by the CLI, as a user would."""
    folder = launcher.make_imagej_folder(tmp_path / "ImageJ")
    proc = subprocess.run([sys.executable, "-m", "model.cli", "install-fiji", str(folder)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (folder / "plugins" / MACRO_NAME).is_file()
    return folder


def python_command(image, out, *options):
    """``focus-quality fiji``: the Python-driven command's TIFF and table for ``image``."""
    proc = subprocess.run([sys.executable, "-m", "model.cli", "fiji", str(image), "-o", str(out), "--no-progress",
                           *options], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out / f"{Path(image).stem}.focus.tif", out / f"{Path(image).stem}.focus.csv"


def overlay_of(tif):
    """Every ROI as (name, bounds, colours, plane position) - what ImageJ shows and where."""
    return [(r.name, (r.left, r.top, r.right, r.bottom), r.stroke_color, r.fill_color, r.position,
             r.c_position, r.z_position, r.t_position) for r in roifile.roiread(tif)]


def table_of(path, imagej_headings):
    """Rows as {csv key: value}, numbers as floats (NaN for empty cells), from either kind of table file."""
    rename = dict(COLUMNS) if imagej_headings else {key: key for _, key in COLUMNS}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{rename[k]: (v if rename[k] in ("image", "region") else float(v or "nan")) for k, v in row.items()
             if k in rename} for row in rows]


def assert_same_table(shown, expected):
    assert len(shown) == len(expected)
    for got, want in zip(shown, expected):
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, str):
                assert got[key] == value, key
            else:
                assert (math.isnan(value) and math.isnan(got[key])) or abs(got[key] - value) < 2e-5, (key, got, want)


def click_command_and_ok(window, artifacts, name):
    """Plugins > Microscope Image Focus Quality, then OK in its dialog, with the mouse; returns the table window."""
    menu = window.click_last_plugins_item(artifacts / f"{name}_menu.png")
    dialog = window.wait_for_window(f"^{COMMAND}$")
    x, y, width, height = window.geometry(dialog)
    window.screenshot(artifacts / f"{name}_dialog.png", (x, y, width, height))
    window.xdotool("mousemove", x + width - 38, y + height - 22, "click", "1")  # OK, bottom right
    table = window.wait_for_window("^Focus Quality$", timeout=180)
    return menu, table


def dump(window, out):
    """Run the dump macro (put in the plugins folder by start_window) from the menu; its info.txt."""
    window.click_last_plugins_item(out.with_suffix(".menu.png"), up=2)
    end = time.time() + 60
    while not (out / "info.txt").exists() and time.time() < end:
        time.sleep(0.2)
    return launcher.read_dump(out)


def start_window(imagej_dir, display, image, *, record=False):
    launcher.add_dump_macro(imagej_dir, imagej_dir / "dump")
    return launcher.ImageJWindow(imagej_dir, display, f'open("{image}");\n' + ('run("Record...");\n' if record else ""))


def test_menu_on_a_single_image_gives_the_python_commands_overlay_and_table(imagej_dir, display, artifacts, tmp_path):
    window = start_window(imagej_dir, display, IN_FOCUS, record=True)
    try:
        menu, table = click_command_and_ok(window, artifacts, "single")
        image = window.wait_for_window(r"^bbbc006_a01_s1_w1_infocus\.tif$")
        window.xdotool("windowmove", table, 0, 640)
        time.sleep(1.0)
        window.screenshot(artifacts / "single_after_run.png")
        info = dump(window, imagej_dir / "dump")
        java_pid = window.process.pid
        workers = [p for p in psutil.process_iter(["cmdline"]) if "fiji_bridge.warm_worker" in (p.info["cmdline"] or [])
                   and str(java_pid) in p.info["cmdline"]]
    finally:
        window.close()
    # Started while the dialog was open (--start), then used by the run: one worker for the session.
    assert len(workers) == 1
    assert (menu.shape[0], menu.shape[1]) == (600, 400)
    assert info["installed"], "the command is not in ImageJ's menus"
    assert info["images"] == [("bbbc006_a01_s1_w1_infocus.tif", (1, 1, 1), info["images"][0][2])]
    tif, table_csv = python_command(IN_FOCUS, tmp_path / "python")
    assert overlay_of(imagej_dir / "dump" / "1.tif") == overlay_of(tif)
    assert_same_table(table_of(imagej_dir / "dump" / "table.csv", True), table_of(table_csv, False))
    # The Macro Recorder wrote the line that repeats the click in a macro.
    assert info["recorded"] == [f'run("{COMMAND}", "columns=0 rows=0 border=0 intensity=0");']
    assert image
    # The worker ends with the ImageJ that started it.
    end = time.time() + 15
    while state_path(java_pid).exists() and time.time() < end:
        time.sleep(0.2)
    assert not state_path(java_pid).exists()


def test_menu_on_a_stack_binds_each_planes_patches_as_the_python_command_does(imagej_dir, display, artifacts,
                                                                              stack_file, tmp_path):
    window = start_window(imagej_dir, display, stack_file)
    try:
        _, table = click_command_and_ok(window, artifacts, "stack")
        window.xdotool("windowmove", table, 0, 700)
        time.sleep(1.0)
        window.screenshot(artifacts / "stack_after_run.png")
        info = dump(window, imagej_dir / "dump")
    finally:
        window.close()
    assert [title for title, _, _ in info["images"]] == ["focal_series.tif"]
    tif, table_csv = python_command(stack_file, tmp_path / "python")
    shown = overlay_of(imagej_dir / "dump" / "1.tif")
    assert shown == overlay_of(tif)
    assert sorted({roi[4] for roi in shown}) == [1, 2, 3]
    assert_same_table(table_of(imagej_dir / "dump" / "table.csv", True), table_of(table_csv, False))


def test_a_macro_runs_it_with_options_and_defaults_for_the_rest(imagej_dir, display, stack_file, tmp_path):
    macro = f"""
    open("{stack_file}");
    run("{COMMAND}", "planes=[Every plane of this channel] go duplicate probability");
    for (i = 1; i <= nImages; i++) {{ selectImage(i); print("image=" + getTitle()); }}
    selectImage(1);
    print("slice=" + getSliceNumber() + " overlay=" + Overlay.size);
    selectWindow("Focus Quality");
    Table.save("{tmp_path}/table.csv");
    """
    proc = launcher.run_batch(imagej_dir, macro, display)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    slice_, overlay = next(line for line in lines if line.startswith("slice=")).split()
    assert slice_ == f"slice={SHARP_SLICE}" and int(overlay.split("=")[1]) > 3 * 49  # went to the best plane
    assert [line for line in lines if line.startswith("image=")] == [
        "image=focal_series.tif", "image=Focus probabilities of focal_series.tif (slices 1-3)",
        "image=focal_series.tif best focus"]
    _, table_csv = python_command(stack_file, tmp_path / "python", "--probabilities", "--duplicate-best")
    assert_same_table(table_of(tmp_path / "table.csv", True), table_of(table_csv, False))


def test_a_macro_on_a_hyperstack_binds_rois_to_channel_slice_and_frame(imagej_dir, display, in_focus_image, tmp_path):
    planes = focal_stack(in_focus_image)
    hyperstack = np.stack([planes, planes[::-1]], axis=1)  # (Z, C, Y, X); channel 2 has the levels reversed
    path = tmp_path / "hyperstack.tif"
    tifffile.imwrite(path, hyperstack, imagej=True, metadata={"axes": "ZCYX"})
    proc = launcher.run_batch(imagej_dir, f"""
    open("{path}");
    Stack.setPosition(2, 1, 1);
    run("{COMMAND}", "planes=[Every plane of every channel]");
    saveAs("Tiff", "{tmp_path}/shown.tif");
    selectWindow("Focus Quality");
    Table.save("{tmp_path}/table.csv");
    """, display)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tif, table_csv = python_command(path, tmp_path / "python")
    shown = overlay_of(tmp_path / "shown.tif")
    assert shown == overlay_of(tif)
    assert {roi[5:8] for roi in shown} == {(c, z, 1) for c in (1, 2) for z in (1, 2, 3)}
    assert_same_table(table_of(tmp_path / "table.csv", True), table_of(table_csv, False))


def test_a_32_bit_image_of_raw_counts_takes_its_full_scale(imagej_dir, display, in_focus_image, tmp_path):
    path = tmp_path / "counts.tif"
    tifffile.imwrite(path, in_focus_image.astype(np.float32), imagej=True)
    proc = launcher.run_batch(imagej_dir, f"""
    open("{path}");
    run("{COMMAND}", "border=0");
    run("{COMMAND}", "intensity=65535");
    selectWindow("Focus Quality");
    Table.save("{tmp_path}/table.csv");
    """, display)
    assert re.search(r"counts\.tif values span [\d.]+\.\.[\d.]+, outside 0\.\.1", proc.stdout), proc.stdout + proc.stderr
    assert ('Set "Intensity full scale" in the dialog, e.g. to 65535 if the values are raw camera counts '
            '(intensity=65535 in a macro).') in proc.stdout
    _, table_csv = python_command(path, tmp_path / "python", "--max-value", "65535")
    assert_same_table(table_of(tmp_path / "table.csv", True), table_of(table_csv, False))


@pytest.mark.parametrize("image, message", [
    ('newImage("colour", "RGB ramp", 300, 200, 1);', "colour is RGB; the focus model needs one grayscale channel"),
    ('newImage("tiny", "16-bit ramp", 60, 50, 1);', "tiny is 60 px wide and 50 px high, smaller than one 84x84 patch"),
])
def test_images_the_model_cannot_take_give_the_reason(imagej_dir, display, image, message):
    proc = launcher.run_batch(imagej_dir, f'{image}\nrun("{COMMAND}", "border=0");\nprint("after=" + nImages);',
                              display)
    assert message in proc.stdout, proc.stdout + proc.stderr
    assert "Focus Quality" not in proc.stdout


def test_a_moved_environment_says_how_to_reinstall(tmp_path, display):
    folder = launcher.make_imagej_folder(tmp_path / "ImageJ")
    install(folder, tmp_path / "moved-venv" / "bin" / "python")
    proc = launcher.run_batch(folder, f'newImage("x", "16-bit ramp", 300, 200, 1);\nrun("{COMMAND}", "border=0");',
                              display)
    assert "is gone (moved or removed)" in proc.stdout, proc.stdout + proc.stderr
    assert f'focus-quality install-fiji "{folder.resolve()}"' in proc.stdout


def test_an_error_in_the_window_is_an_imagej_dialog(imagej_dir, display, artifacts):
    window = launcher.ImageJWindow(imagej_dir, display, 'newImage("tiny", "16-bit ramp", 60, 50, 1);')
    try:
        window.click_last_plugins_item(artifacts / "error_menu.png")
        dialog = window.wait_for_window(f"^{COMMAND}$")
        x, y, width, height = window.geometry(dialog)
        window.xdotool("mousemove", x + width - 38, y + height - 22, "click", "1")  # OK in the options dialog
        error = window.wait_for_window(f"^{COMMAND}$", other_than=(dialog,))
        window.screenshot(artifacts / "error_dialog.png", window.geometry(error))
        assert not window.windows("^Focus Quality$")
    finally:
        window.close()


def test_uninstall_removes_exactly_what_install_added(imagej_dir, display):
    plugins = imagej_dir / "plugins"
    (plugins / "Someone_Elses.ijm").write_text('print("hello");')
    before = sorted(p.name for p in plugins.iterdir())
    proc = subprocess.run([sys.executable, "-m", "model.cli", "install-fiji", "--uninstall", str(imagej_dir)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in plugins.iterdir()) == [n for n in before if n != MACRO_NAME]
    listed = launcher.run_batch(imagej_dir, f'List.setCommands;\nprint("installed=" + List.get("{COMMAND}"));\n'
                                            'print("other=" + List.get("Someone Elses"));', display)
    assert "installed=\n" in listed.stdout and "Someone_Elses.ijm" in listed.stdout


def test_install_refuses_what_is_not_an_imagej_folder_and_leaves_others_files(tmp_path):
    with pytest.raises(InstallError, match="not a Fiji or ImageJ folder"):
        install(tmp_path, sys.executable)
    fiji = tmp_path / "Fiji.app"
    (fiji / "jars").mkdir(parents=True)
    path = install(fiji, sys.executable)
    assert path == fiji / "plugins" / MACRO_NAME
    path.write_text("// someone's own macro of that name")
    with pytest.raises(InstallError, match="not written by focus-quality"):
        install(fiji, sys.executable)
    with pytest.raises(InstallError, match="not written by focus-quality"):
        uninstall(fiji)
    assert path.read_text() == "// someone's own macro of that name"
