"""Run under Xvfb by test_fiji_bridge: ImageJ with its window, the menu entry clicked on an open image.

Prints one JSON line describing what happened on screen.
"""
import json
import sys
import time


def main(image_path):
    from fiji_bridge import jimport
    from fiji_bridge.menu import start_gui

    item = start_gui([image_path])
    IJ, WindowManager = jimport("ij.IJ"), jimport("ij.WindowManager")
    imp = _wait_for(WindowManager.getCurrentImage)
    ActionEvent = jimport("java.awt.event.ActionEvent")
    item.dispatchEvent(ActionEvent(item, ActionEvent.ACTION_PERFORMED, str(item.getLabel())))
    # The entry runs the command on its own thread; the table window appears first, then fills.
    table = _wait_for(lambda: _filled_table(WindowManager.getWindow("Focus Quality")))
    window = WindowManager.getWindow("Focus Quality")
    overlay = imp.getOverlay()
    names = [str(overlay.get(i).getName()) for i in range(overlay.size())]
    print(json.dumps({
        "menu": [str(item.getParent().getLabel()), str(item.getLabel())],
        "patch_rois": sum(name.startswith("patch ") for name in names),
        "table_rows": int(table.size()) if table is not None else 0,
        "table_window": window is not None,
    }))
    IJ.getInstance().quit()


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
    main(sys.argv[1])
    sys.exit(0)
