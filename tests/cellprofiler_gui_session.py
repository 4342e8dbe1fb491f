"""Run by test_cellprofiler_gui under Xvfb: CellProfiler's real GUI, driven as a user would.

CellProfiler starts through its own ``main()`` with the example pipeline and
this project's plugins folder. A driver thread then works the window: it clicks
the buttons with xdotool (real X events), reads what the window shows from
CellProfiler's own objects (the module's figure: its table and its image), and
takes screenshots. It prints one JSON line describing what happened on screen.

Steps: add the images to the file list (as File > Import does), select
MeasureImageFocus and open its display window (the eye icon), Start Test Mode,
Step, read the module window, Exit Test Mode, Analyze Images, quit.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
import traceback

REPORT = {"steps": [], "dialogs": [], "message_boxes": []}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--plugins", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--screenshots", required=True)
    parser.add_argument("--images", nargs="+", required=True)
    parser.add_argument("--cellprofiler-args", default="", help="more options for cellprofiler, one string")
    parser.add_argument("--expect-model-error", action="store_true",
                        help="the plugin's weights are damaged: only check the error box of the first Step")
    parser.add_argument("--expect-not-assessed", action="store_true",
                        help="the first image cannot be assessed: only read the module window of the first Step")
    args = parser.parse_args()

    _work_around_wx_float_arguments()
    _record_message_boxes()
    _answer_first_start_questions()
    import cellprofiler.__main__ as cellprofiler_main

    args.images = [os.path.abspath(p) for p in args.images]
    driver = threading.Thread(target=drive, args=(args,), daemon=True)
    driver.start()
    threading.Thread(target=_watchdog, args=(driver,), daemon=True).start()
    argv = (["cellprofiler", "-p", args.pipeline, "--plugins-directory", args.plugins, "-o", args.output]
            + shlex.split(args.cellprofiler_args))
    sys.argv = argv  # CellProfiler 5's main() parses sys.argv, 4's its argument
    cellprofiler_main.main(argv)
    driver.join(timeout=10)
    _print_report()


def _print_report():
    REPORT["tensorflow_in_gui_process"] = "tensorflow" in sys.modules
    print(json.dumps(REPORT), flush=True)


def _watchdog(driver, grace=60):
    """If CellProfiler has not closed a minute after the driver finished, report and leave."""
    driver.join()
    time.sleep(grace)
    REPORT["stuck"] = "CellProfiler's window did not close after the session"
    _print_report()
    os._exit(3)


def _work_around_wx_float_arguments():
    """TEST-ONLY WORK-AROUND for CellProfiler's own bug, not ours (wxPython issues #2254, #2295).

    On Python >= 3.10, CellProfiler's settings panel (``_module_sizer.RecalcSizes``) and
    figure tables (``align_widget``) pass floats to ``wx.Point`` / ``wx.Size``, and its
    progress bar (``_preferences_view.update_progress``) to ``wx.Gauge.SetValue``, which
    wxPython 4.2 refuses: panels pile up in a corner, an error dialog appears, and
    *Analyze Images* stops with "Failure in analysis startup". Rounding the arguments
    lets the window work as it does on older Pythons.
    """
    import wx

    def rounding(cls):
        class Rounded(cls):
            def __init__(self, *args, **kwargs):
                super().__init__(*[round(a) if isinstance(a, float) else a for a in args], **kwargs)
        Rounded.__name__ = cls.__name__
        return Rounded

    wx.Point, wx.Size = rounding(wx.Point), rounding(wx.Size)
    set_value = wx.Gauge.SetValue
    wx.Gauge.SetValue = lambda self, value: set_value(self, round(value))


def _answer_first_start_questions():
    """What a user answers once and never sees again: telemetry, the welcome screen, the end-of-run box.

    Offline, CellProfiler 5 users also switch its Bio-Formats reader off (File > Preferences),
    or it fetches Bio-Formats from Maven; ``-e imageio_reader`` covers only the window's own
    process, not the workers of *Analyze Images*. Written straight into CellProfiler's
    preferences file: asking CellProfiler to write them would create a wx App before its own.
    """
    import cellprofiler_core.preferences as preferences

    answers = ["PreferencesVersion=1", "Telemetry\\ prompt=0", "Telemetry=0", "StartupBlurb=0",
               "ShowAnalysisCompleteDlg=False", "ShowExitingTestModeDlg=False"]
    if hasattr(preferences, "get_user_config_directory"):  # CellProfiler 5
        path = os.path.join(preferences.get_user_config_directory(), preferences.LOCAL_CONFIG_FILE_NAME)
        answers.append("Reader.Bio-Formats.enabled=False")
    else:  # CellProfiler 4: wx's XDG layout
        path = os.path.join(os.environ.get("XDG_CONFIG_HOME", os.path.expanduser("~/.config")),
                            "CellProfilerLocal.cfg")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(answers) + "\n")


# --- driving the window ------------------------------------------------------------------------

def on_gui(function, *args, timeout=120):
    """Run ``function`` on the GUI thread and return its result."""
    import wx

    done, box = threading.Event(), {}

    def run():
        try:
            box["value"] = function(*args)
        except Exception as exc:  # handed back to the driver thread
            box["error"] = exc
        done.set()

    wx.CallAfter(run)
    if not done.wait(timeout):
        raise TimeoutError(f"the GUI thread did not run {function.__name__} within {timeout} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def wait_for(what, predicate, timeout=180, poll=0.5):
    end = time.time() + timeout
    while time.time() < end:
        value = on_gui(predicate)
        if value:
            return value
        close_unexpected_dialogs()
        time.sleep(poll)
    raise TimeoutError(f"waited {timeout} s for {what}")


def step(name):
    REPORT["steps"].append(name)


def windows(root):
    yield root
    for child in root.GetChildren():
        yield from windows(child)


def button(frame, label):
    found = [w for w in windows(frame) if hasattr(w, "GetLabel") and w.GetLabel() == label and w.IsShownOnScreen()]
    if not found:
        raise LookupError(f"no button {label!r} on screen")
    return found[0]


def screen_centre(window):
    x, y, w, h = window.GetScreenRect()
    return x + w // 2, y + h // 2


def click(label):
    """Click the button with ``label`` with the mouse, through the X server."""
    import wx

    frame = wx.GetApp().frame
    x, y = on_gui(lambda: screen_centre(button(frame, label)))
    under = on_gui(lambda: wx.FindWindowAtPoint((x, y)))
    under = on_gui(lambda: f"{under.GetClassName()} {under.GetLabel()!r}" if under else None)
    # Come from elsewhere, as a hand does: GTK routes a press by the last pointer motion, and the
    # button may have just replaced another one at the same place.
    subprocess.run(["xdotool", "mousemove", str(x + 60), str(y - 60), "sleep", "0.3", "mousemove", str(x), str(y),
                    "sleep", "0.3", "click", "1"], check=True)
    step(f"clicked {label} at {x},{y} on {under}")


def screenshot(args, name, window=None):
    """Save the screen, or one window's part of it, as PNG; returns the path."""
    path = os.path.join(args.screenshots, f"{name}.png")
    command = ["import", "-window", "root"]
    if window is not None:
        x, y, w, h = on_gui(lambda: tuple(window.GetScreenRect()))
        command += ["-crop", f"{w}x{h}+{max(x, 0)}+{max(y, 0)}"]
    time.sleep(1.0)  # let the window finish drawing
    subprocess.run(command + [path], check=True)
    REPORT.setdefault("screenshots", {})[name] = path
    return path


def close_unexpected_dialogs():
    """Record and close any modal dialog (a user would have to answer it; the test should not need one)."""
    import wx

    def find():
        return [(w.GetTitle(), _dialog_text(w)) for w in wx.GetTopLevelWindows()
                if isinstance(w, wx.Dialog) and w.IsModal()]

    for title, text in on_gui(find):
        REPORT["dialogs"].append({"title": title, "text": text})
        subprocess.run(["xdotool", "key", "Return"], check=False)


def _dialog_text(dialog):
    return " ".join(w.GetLabel() for w in windows(dialog) if w.GetClassName() == "wxStaticText")[:500]


def focus_module(frame):
    pipeline = frame.pipeline_controller._PipelineController__pipeline
    return next(m for m in pipeline.modules() if m.module_name == "MeasureImageFocus")


def module_figure(module, with_image=True):
    """The module's display window, once it shows a table (and an image, ``with_image``)."""
    import wx

    for window in wx.GetTopLevelWindows():
        title = window.GetTitle() if hasattr(window, "GetTitle") else ""
        if title.startswith(f"{module.module_name} #{module.module_num}") and window.IsShown():
            figure = window
            if ((figure.subplot(0, 0).get_images() or not with_image)
                    and any(isinstance(w[-1], wx.grid.Grid) for w in figure.widgets)):
                return figure
    return None


def read_table(figure):
    """The rows of the module window's table, as (label, value) pairs."""
    import wx

    grid = next(w[-1] for w in figure.widgets if isinstance(w[-1], wx.grid.Grid))
    return [(grid.GetCellValue(r, 0), grid.GetCellValue(r, 1)) for r in range(grid.GetNumberRows())]


def read_figure(figure):
    """What the module window shows: the table's rows and the image's pixels."""
    import numpy as np

    table = dict(read_table(figure))
    shown = figure.subplot(0, 0).get_images()[0]
    image = np.asarray(shown.get_array(), dtype=float)
    # Where the image is drawn on screen: matplotlib counts from the canvas's bottom-left corner.
    box = shown.get_window_extent()
    left, top = figure.panel.GetScreenPosition()
    height = figure.panel.GetSize()[1]
    rect = [int(left + box.x0), int(top + height - box.y1), int(box.width), int(box.height)]
    return table, image, rect


def drive(args):
    import numpy as np
    import wx

    try:
        # Wait for the App that has CellProfiler's frame: CellProfiler 5 first makes another one for
        # its preferences, and events posted to that one are never processed.
        end = time.time() + 300
        while getattr(wx.GetApp(), "frame", None) is None and time.time() < end:
            time.sleep(0.2)
        wait_for("CellProfiler's main window", lambda: (getattr(wx.GetApp(), "frame", None) is not None
                                                         and wx.GetApp().frame.IsShown()))
        frame = wx.GetApp().frame
        on_gui(lambda: (frame.SetPosition((0, 0)), frame.SetSize((1400, 900))))
        step("main window shown")
        controller = frame.pipeline_controller
        on_gui(controller.add_paths_to_pathlist, list(args.images))
        wait_for("the file list", lambda: len(controller._PipelineController__workspace.file_list.get_filelist())
                 >= len(args.images))
        step("images added to the file list")

        module = on_gui(focus_module, frame)
        on_gui(lambda: frame.pipeline_list_view.select_one_module(module.module_num))
        on_gui(lambda: setattr(module, "show_window", True))  # the eye icon
        step("MeasureImageFocus selected, its window switched on")
        screenshot(args, "settings_panel", frame)

        click("Start Test Mode")
        wait_for("test mode", controller.is_in_debug_mode)
        click("Step")
        if args.expect_model_error:
            _read_model_error(args)
            return
        if args.expect_not_assessed:
            figure = wait_for("the MeasureImageFocus window", lambda: module_figure(module, with_image=False))
            on_gui(lambda: (figure.SetPosition((0, 0)), figure.SetSize((1300, 650)), figure.Raise()))
            time.sleep(2)
            REPORT["figure_rows"] = on_gui(read_table, figure)
            screenshot(args, "not_assessed", figure)
            return
        figure = wait_for("the MeasureImageFocus window", lambda: module_figure(module), timeout=300)
        on_gui(lambda: (figure.SetPosition((0, 0)), figure.SetSize((1300, 650)), figure.Raise()))
        time.sleep(2)
        table, image, rect = on_gui(read_figure, figure)
        REPORT["figure_table"] = table
        REPORT["figure_image_on_screen"] = rect
        REPORT["figure_image"] = {"shape": image.shape, "min": float(image.min()), "max": float(image.max()),
                                  "mean": float(image.mean())}
        np.save(os.path.join(args.screenshots, "figure_image.npy"), image)
        REPORT["alive_after_step"] = True
        REPORT["mesa_llvm_in_gui_process"] = _mesa_llvm_loaded()
        REPORT["backends"] = _backends()
        REPORT["display_window_rect"] = on_gui(lambda: list(figure.GetScreenRect()))
        screenshot(args, "display_window", figure)
        step("module window read")

        click("Exit Test Mode")
        wait_for("launch controls", lambda: not controller.is_in_debug_mode())
        click("Analyze Images")
        wait_for("the analysis to finish", lambda: _analysis_finished(controller, args.output), timeout=600)
        step("analysis finished")
        screenshot(args, "after_analysis")
    except Exception:
        REPORT["driver_error"] = traceback.format_exc()
        try:
            screenshot(args, "driver_error")
        except Exception:
            pass
    finally:
        close_unexpected_dialogs()
        wx.CallAfter(_quit)


def _read_model_error(args):
    """With damaged weights, Step must end in CellProfiler's error box naming the reason."""
    end = time.time() + 120
    while not REPORT["message_boxes"] and time.time() < end:
        time.sleep(0.5)
    if not REPORT["message_boxes"]:
        raise TimeoutError("no error box within 120 s")
    screenshot(args, "model_error")
    subprocess.run(["xdotool", "key", "Escape"], check=False)  # Cancel: stop processing
    step("error box read and cancelled")


def _record_message_boxes():
    """TEST-ONLY: CellProfiler's error boxes are native GTK dialogs (wx.MessageDialog), not wx windows
    that the driver can read; record what each says when it is shown."""
    import wx

    show = wx.MessageDialog.ShowModal

    def recorded(dialog):
        REPORT["message_boxes"].append({"title": dialog.GetTitle(),
                                        "text": f"{dialog.GetMessage()} {dialog.GetExtendedMessage()}"})
        return show(dialog)

    wx.MessageDialog.ShowModal = recorded


def _mesa_llvm_loaded():
    """Whether GTK's OpenGL has brought Mesa's LLVM into this process (what TensorFlow's LLVM clashed with)."""
    with open("/proc/self/maps") as maps:
        return any("libLLVM" in line for line in maps)


def _backends():
    """What ran the network in this process: the backends of the models the module loaded
    (its core is ``model`` or, in a plugins folder for the app, ``measureimagefocus_core``)."""
    return sorted({m.backend for name, module in sys.modules.items() if name.endswith(".predictor")
                   for m in getattr(module, "_CACHE", {}).values()})


def _analysis_finished(controller, output):
    if controller.is_running():
        return False
    return os.path.exists(os.path.join(output, "Focus_Image.csv"))


def _quit():
    import wx

    app = wx.GetApp()
    app.frame.Destroy()
    app.ExitMainLoop()


if __name__ == "__main__":
    main()
