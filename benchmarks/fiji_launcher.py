"""Time from the command to the overlay, in ImageJ started by its own launcher after ``focus-quality install-fiji``.

    python -m benchmarks.fiji_launcher >> benchmarks/RESULTS.md

ImageJ1 (Debian's ij.jar) runs with its window under Xvfb and a macro that
opens each image and runs the installed command twice, timing each
``run("Microscope Image Focus Quality", ...)`` until it returns with the overlay
on the image and the table shown. The first call of the session starts the
warm worker (Python, TensorFlow, the model and a headless ImageJ); later calls
reuse it. The worker's own time per image comes from its log.
"""
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tifffile

from fiji_bridge.install import install
from fiji_bridge.macro_client import state_path
from tests import virtual_display
from tests.imagej_launcher import COMMAND, IJ_JAR, ImageJWindow, make_imagej_folder

from .suite import SAMPLE, test_images

CALLS = 2
#: Seconds the dialog stays open before OK, in the window runs.
HOLDS = (0, 4)


def bench_macro(image, log_path):
    """Open ``image``, run the command CALLS times on it, save the Log and quit."""
    lines = [f'open("{image}");', "id = getImageID();"]
    for call in range(1, CALLS + 1):
        lines += ["selectImage(id);", "t0 = getTime();", f'run("{COMMAND}", "border=0");',
                  f'print("{call}\\t" + (getTime() - t0) + "\\t" + Overlay.size);']
    lines += ['print("ImageJ " + getVersion());', f'selectWindow("Log"); saveAs("Text", "{log_path}");', 'run("Quit");']
    return "\n".join(lines)


def session(folder, image, env):
    """One ImageJ session on ``image``: [(call, seconds, overlay ROIs)], the worker's log lines, ImageJ's version."""
    log = folder / "log.txt"
    macro = folder / "bench.ijm"
    macro.write_text(bench_macro(image, log))
    java = subprocess.Popen(["java", "-jar", str(IJ_JAR), "-ijpath", str(folder), "-macro", str(macro)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    worker_log = Path(f"{state_path(java.pid)}.log")
    worker_lines = []
    while True:  # the worker removes its log about a second after ImageJ ends: read it until then
        ended = java.poll() is not None
        if worker_log.exists():
            worker_lines = worker_log.read_text().splitlines()
        if ended:
            break
        try:
            java.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
    printed = log.read_text().splitlines()
    calls = [(int(c), int(ms) / 1000, int(rois)) for c, ms, rois in (line.split("\t") for line in printed
                                                                     if line.count("\t") == 2)]
    return calls, worker_lines, next(line for line in printed if line.startswith("ImageJ "))


def clicked(folder, image, env, hold):
    """Seconds from OK in the dialog to the table's window, the dialog left open ``hold`` s, first call of a session.

    The macro starts the worker before showing its dialog, so time spent in the dialog hides the start-up.
    """
    window = ImageJWindow(folder, env, f'open("{image}");')
    try:
        window.click_last_plugins_item(folder / "menu.png")
        dialog = window.wait_for_window(f"^{COMMAND}$")
        x, y, width, height = window.geometry(dialog)
        time.sleep(hold)
        start = time.perf_counter()
        window.xdotool("mousemove", x + width - 38, y + height - 22, "click", "1")
        window.wait_for_window("^Focus Quality$", timeout=300, settle=0)
        return time.perf_counter() - start
    finally:
        window.close()


def main():
    with tempfile.TemporaryDirectory() as tmp, virtual_display.virtual_display() as env:
        tmp = Path(tmp)
        folder = make_imagej_folder(tmp / "ImageJ")
        install(folder, sys.executable)
        big = tmp / "field_2048x2048.tif"
        tifffile.imwrite(big, next(test_images((2048, 2048), 1)))
        runs = [("696x520", *session(folder, SAMPLE, env)), ("2048x2048", *session(folder, big, env))]
        holds = {hold: clicked(folder, SAMPLE, env, hold) for hold in HOLDS}
    version = runs[0][3]
    print("\n## Fiji command from ImageJ's own launcher (`python -m benchmarks.fiji_launcher`)\n")
    print(f"{version} with its window (Xvfb), the command installed by `focus-quality install-fiji`; time from "
          "`run(\"Microscope Image Focus Quality\", ...)` to its return with the overlay on the image and the table "
          "shown, in a fresh ImageJ session per image size. The first call starts the session's warm worker "
          "(Python, TensorFlow, the model, a headless ImageJ); the second reuses it.\n")
    print("| image | call | command to overlay (s) | worker start-up (s) | in the worker (s) | overlay ROIs |")
    print("|---|---|---|---|---|---|")
    for size, calls, worker_lines, _ in runs:
        ready = [float(m.group(1)) for line in worker_lines if (m := re.search(r"ready in ([\d.]+) s", line))]
        assessed = [float(m.group(1)) for line in worker_lines if (m := re.search(r"assessed in ([\d.]+) s", line))]
        for (call, seconds, rois), worker in zip(calls, assessed):
            start_up = f"{ready[0]:.2f}" if call == 1 and ready else "-"
            print(f"| {size} | {'first' if call == 1 else 'second'} | {seconds:.2f} | {start_up} | {worker:.2f} | "
                  f"{rois} |")

    print("\nIn the window, first call of a session on the 696x520 image, clicked with xdotool: from OK in the "
          "dialog to the table's window (polled every 0.2 s):\n")
    print("| dialog open before OK | OK to table (s) |")
    print("|---|---|")
    for hold, seconds in holds.items():
        print(f"| {hold} s | {seconds:.2f} |")


if __name__ == "__main__":
    main()
