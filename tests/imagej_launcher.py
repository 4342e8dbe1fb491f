"""ImageJ1 started as users start it, by its own launcher (``java -jar ij.jar -ijpath DIR``), driven with xdotool.

Nothing here runs inside ImageJ's JVM: the tests see ImageJ as a user does,
through its windows (xdotool, screenshots), its plugins folder and macros run by
ImageJ itself. What a test needs to read back (the table, the overlay, the
Macro Recorder's text, the menu commands) is saved by a small macro put in the
plugins folder beside ours (:data:`DUMP_MACRO`), run from the menu like any
command.
"""
import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image

IJ_JAR = Path(os.environ.get("IJ_JAR", "/usr/share/java/ij.jar"))
COMMAND = "Microscope Image Focus Quality"
DUMP_NAME = "Focus_Test_Dump.ijm"  # sorts before ours: the Plugins menu ends ..., Focus Test Dump, ours
#: What the dump macro saves into {out}: info.txt (commands, images and their positions, the recorder's text),
#: table.csv (the "Focus Quality" table as ImageJ saves it) and <n>.tif (each image with its overlay).
DUMP_MACRO = """
out = "{out}";
File.makeDirectory(out);
List.setCommands;
info = "installed=" + List.get("{command}") + "\\n";
List.clear();
if (isOpen("Recorder")) {{
    selectWindow("Recorder");
    info += "recorded=" + replace(getInfo("window.contents"), "\\n", "|") + "\\n";
}}
if (isOpen("Focus Quality")) {{
    selectWindow("Focus Quality");
    Table.save(out + "table.csv");
}}
for (i = 1; i <= nImages; i++) {{
    selectImage(i);
    Stack.getPosition(c, z, t);
    info += "image=" + i + "\\t" + getTitle() + "\\t" + c + " " + z + " " + t + "\\t" + Overlay.size + "\\n";
    run("Duplicate...", "title=dump duplicate");
    saveAs("Tiff", out + i + ".tif");
    close();
}}
File.saveString(info, out + "info.txt");
"""


def available():
    return IJ_JAR.is_file() and shutil.which("java") is not None


def make_imagej_folder(path):
    """An ImageJ folder as ``-ijpath`` takes it: ``plugins/`` (Debian's ij.jar lives elsewhere)."""
    (Path(path) / "plugins").mkdir(parents=True, exist_ok=True)
    return Path(path)


def add_dump_macro(imagej_dir, out):
    (Path(imagej_dir) / "plugins" / DUMP_NAME).write_text(DUMP_MACRO.format(out=f"{out}/", command=COMMAND))


def read_dump(out):
    """info.txt as {"installed": ..., "recorded": [...lines], "images": [(title, (c, z, t), overlay size)]}."""
    info = {"images": []}
    for line in (Path(out) / "info.txt").read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "image":
            _, title, position, size = value.split("\t")
            info["images"].append((title, tuple(int(v) for v in position.split()), int(size)))
        elif key == "recorded":
            info["recorded"] = [v for v in value.split("|") if v]
        else:
            info[key] = value
    return info


def run_batch(imagej_dir, macro, env, timeout=300):
    """ImageJ without its window (``-batch``) running ``macro`` (text); returns the CompletedProcess."""
    path = Path(imagej_dir) / "batch.ijm"
    path.write_text(macro)
    return subprocess.run(["java", "-jar", str(IJ_JAR), "-ijpath", str(imagej_dir), "-batch", str(path)],
                          env=env, capture_output=True, text=True, timeout=timeout)


class ImageJWindow:
    """ImageJ with its window, started by its launcher; a startup macro opens the images."""

    def __init__(self, imagej_dir, env, startup_macro=""):
        self.imagej_dir, self.env = Path(imagej_dir), env
        startup = self.imagej_dir / "startup.ijm"
        startup.write_text(startup_macro)
        self.log = open(self.imagej_dir / "imagej.log", "w")
        self.process = subprocess.Popen(["java", "-jar", str(IJ_JAR), "-ijpath", str(imagej_dir), "-macro",
                                         str(startup)], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.main = self.wait_for_window("^ImageJ$", geometry=lambda g: g[2] > 100)

    def xdotool(self, *args):
        return subprocess.run(["xdotool", *map(str, args)], env=self.env, capture_output=True, text=True,
                              timeout=30).stdout

    def windows(self, name):
        """Ids of the visible windows whose name matches the regular expression ``name``."""
        return [int(w) for w in self.xdotool("search", "--onlyvisible", "--name", name).split()]

    def geometry(self, window):
        """(x, y, width, height) of an X window."""
        values = dict(line.split("=") for line in self.xdotool("getwindowgeometry", "--shell", window).split())
        return tuple(int(values[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))

    def wait_for_window(self, name, timeout=120, geometry=lambda g: True, other_than=(), settle=0.5):
        end = time.time() + timeout
        while time.time() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"ImageJ ended (status {self.process.returncode}); see {self.log.name}")
            found = [w for w in self.windows(name) if w not in other_than and geometry(self.geometry(w))]
            if found:
                time.sleep(settle)  # let it paint
                return found[0]
            time.sleep(0.2)
        raise TimeoutError(f"no window {name!r} within {timeout} s")

    def screenshot(self, path, region=None):
        """The screen (or ``region`` = (x, y, width, height) of it) as a PNG; returns it as an RGB array."""
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, check=True, timeout=30)
        image = Image.open(path).convert("RGB")
        if region is not None:
            x, y, w, h = region
            image = image.crop((x, y, x + w, y + h))
            image.save(path)
        return np.asarray(image)

    def open_plugins_menu(self):
        """Click "Plugins" in ImageJ's menu bar."""
        x, y, _, _ = self.geometry(self.main)
        self.xdotool("mousemove", x + PLUGINS_LABEL_X, y + MENU_BAR_Y, "click", "1")
        time.sleep(1.0)

    def click_last_plugins_item(self, screenshot, up=1):
        """Open Plugins, highlight the ``up``-th item from the bottom with the arrow key, then click on it.

        The highlighted row is found in a screenshot, so the click lands on the item
        the user would see highlighted. Returns that row's screenshot crop.
        """
        self.open_plugins_menu()
        for _ in range(up):
            self.xdotool("key", "Up")
        time.sleep(0.5)
        x, y, _, _ = self.geometry(self.main)
        menu_region = (x + PLUGINS_LABEL_X - 40, y + MENU_BAR_Y + 10, 400, 600)
        pixels = self.screenshot(screenshot, menu_region)
        row = highlighted_row(pixels)
        self.xdotool("mousemove", menu_region[0] + 100, menu_region[1] + row, "click", "1")
        return pixels

    def close(self):
        with contextlib.suppress(Exception):
            self.process.terminate()
            self.process.wait(timeout=20)
        if self.process.poll() is None:
            self.process.kill()
        self.log.close()


#: Where "Plugins" sits in ImageJ1's menu bar, from the window's top-left corner (Debian's ij.jar, default font).
PLUGINS_LABEL_X, MENU_BAR_Y = 321, 12
#: The grey AWT paints behind a highlighted menu item (XToolkit's default look).
HIGHLIGHT = (201, 201, 201)


def highlighted_row(pixels):
    """The y (within ``pixels``) of the middle of the highlighted menu item: the longest run of HIGHLIGHT rows."""
    rows = np.flatnonzero((np.abs(pixels[:, :, :].astype(int) - HIGHLIGHT).sum(axis=2) < 12).sum(axis=1) > 150)
    if rows.size == 0:
        raise RuntimeError("no highlighted menu item in the screenshot")
    runs = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    best = max(runs, key=len)
    return int(best.mean())
