"""Run by the ImageJ window tests under Xvfb: ImageJ with its window, the menu entry used as a user would.

Opens an image, picks Plugins > Microscope Image Focus Quality, answers the
command's dialog (every plane of this channel, go to the best plane) and clicks
OK with the mouse, waits for the "Focus Quality" table, then moves through the
slices. For each slice it saves a screenshot of the image window and reads, on
screen, the colour of every patch border. Prints one JSON line describing what
the windows showed.
"""
import json
import os
import re
import subprocess
import sys
import time


def main(image_path, screenshots):
    from fiji_bridge import jimport
    from fiji_bridge.dialog import PLANE_CHOICES
    from fiji_bridge.menu import start_gui

    item = start_gui([image_path])
    WindowManager = jimport("ij.WindowManager")
    imp = _wait_for(WindowManager.getCurrentImage)
    ActionEvent = jimport("java.awt.event.ActionEvent")
    item.dispatchEvent(ActionEvent(item, ActionEvent.ACTION_PERFORMED, str(item.getLabel())))
    dialog = _wait_for(lambda: _dialog("Microscope Image Focus Quality"))
    stack = imp.getStackSize() > 1
    if stack:
        dialog.getChoices().get(0).select(PLANE_CHOICES["stack"])
        dialog.getCheckboxes().get(2).setState(True)  # go to the best plane
    time.sleep(0.5)
    _screenshot(os.path.join(screenshots, "dialog.png"), dialog)
    _click(dialog.getButtons()[0], until=lambda: not dialog.isShowing())  # OK
    table = _wait_for(lambda: _filled_table(WindowManager.getWindow("Focus Quality")))
    # Side by side, as a user would arrange them: ImageJ's bar, the image below it, the table to its right.
    window, table_window = imp.getWindow(), WindowManager.getWindow("Focus Quality")
    window.setLocation(0, 110)
    table_window.setLocation(int(window.getWidth()) + 10, 110)
    time.sleep(1.5)
    _screenshot(os.path.join(screenshots, "table.png"), table_window)
    overlay = imp.getOverlay()
    rois = [overlay.get(i) for i in range(overlay.size())]
    whole = [i for i in range(table.size()) if str(table.getStringValue("Region", i)) == "whole image"]
    report = {
        "menu": [str(item.getParent().getLabel()), str(item.getLabel())],
        "table_rows": int(table.size()),
        "whole_image_rows": [{"slice": int(table.getValue("Slice", i)), "level": table.getValue("Level", i),
                              "best": table.getValue("BestPlane", i)} for i in whole],
        "slice_after_run": int(imp.getCurrentSlice()),
        "rois": [{"name": str(r.getName()), "position": int(r.getPosition()), "box": _box(r),
                  "colour": _rgb(r.getStrokeColor())} for r in rois],
        "slices": [],
    }
    for n in range(1, imp.getStackSize() + 1):
        imp.setSlice(n)  # as the slider does
        time.sleep(1.5)
        path = os.path.join(screenshots, f"slice{n}.png")
        _screenshot(path, imp.getWindow())
        report["slices"].append({"slice": n, "screenshot": path, "canvas": _canvas_geometry(imp)})
    print(json.dumps(report))
    jimport("ij.IJ").getInstance().quit()


def _dialog(title):
    for window in __import__("fiji_bridge").jimport("java.awt.Window").getWindows():
        if window.isShowing() and str(getattr(window, "getTitle", lambda: "")()) == title:
            return window
    return None


def _on_screen(component):
    """Screen position of a component: where the X server has its window, plus its offsets within it.

    Without a window manager, AWT does not always learn where its windows went (a dialog can
    report (0, 0) while it is shown elsewhere), so the X server is asked.
    """
    from fiji_bridge import jimport

    window_class = jimport("java.awt.Window")
    x = y = 0
    while not window_class.class_.isInstance(component):
        where = component.getLocation()
        x, y = x + int(where.x), y + int(where.y)
        component = component.getParent()
    left, top = _x_window_position(str(component.getTitle()))
    return left + x, top + y


def _x_window_position(title):
    found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", f"^{re.escape(title)}$",
                            "getwindowgeometry", "--shell"], capture_output=True, text=True).stdout
    values = dict(line.split("=", 1) for line in found.splitlines() if "=" in line)
    return int(values["X"]), int(values["Y"])


def _click(component, until, tries=3):
    """A real mouse click at the middle of a Java AWT component, through the X server, repeated until ``until()``.

    A freshly shown dialog moves once it is placed, and without a window manager it can miss the
    first press while it takes the focus: aim where it has settled, and try again.
    """
    for _ in range(tries):
        x, y = _settled_centre(component)
        subprocess.run(["xdotool", "mousemove", str(x + 40), str(y + 40), "sleep", "0.3", "mousemove", str(x),
                        str(y), "sleep", "0.3", "click", "1"], check=True)
        if _wait_for(lambda: True if until() else None, timeout=5):
            return
    raise RuntimeError(f"clicking {component} at {x},{y} had no effect")


def _settled_centre(component, timeout=10):
    """The component's centre on screen once it has stayed put for half a second."""
    size = component.getSize()
    last, end = None, time.time() + timeout
    while time.time() < end:
        left, top = _on_screen(component)
        here = (left + int(size.width) // 2, top + int(size.height) // 2)
        if here == last:
            return here
        last = here
        time.sleep(0.5)
    return last


def _screenshot(path, window):
    (x, y), size = _on_screen(window), window.getSize()
    subprocess.run(["import", "-window", "root", "-crop", f"{int(size.width)}x{int(size.height)}+{x}+{y}", path],
                   check=True)


def _canvas_geometry(imp):
    """Where image pixel (0, 0) is on the window's screenshot, and the zoom."""
    canvas, window = imp.getCanvas(), imp.getWindow()
    (x, y), (left, top) = _on_screen(canvas), _on_screen(window)
    source = canvas.getSrcRect()
    return {"x": x - left, "y": y - top, "zoom": float(canvas.getMagnification()),
            "source_x": int(source.x), "source_y": int(source.y)}


def _box(roi):
    bounds = roi.getBounds()
    return [int(bounds.x), int(bounds.y), int(bounds.width), int(bounds.height)]


def _rgb(colour):
    return None if colour is None else [int(colour.getRed()), int(colour.getGreen()), int(colour.getBlue())]


def _filled_table(window):
    table = window.getResultsTable() if window is not None else None
    return table if table is not None and table.size() > 0 else None


def _wait_for(get, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        value = get()
        if value is not None:
            return value
        time.sleep(0.2)
    return None


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2])
    except BaseException:
        import traceback

        traceback.print_exc()
        os._exit(1)  # ImageJ's window threads would keep the process alive
    sys.exit(0)
