"""ImageJ with its window and a "Plugins > Microscope Image Focus Quality" menu entry that runs the command.

The entry asks for its options in an ImageJ dialog (defaults: the options given
when ImageJ was started), runs on the current image, shows the "Focus Quality"
table and any new images; problems become an ImageJ error dialog.
"""
import logging
import threading

from model.scaling import ImageError

from ._java import jimport, start_imagej
from .batch import FijiOptions
from .command import TABLE_TITLE, TITLE, run_focus_quality
from .dialog import PLANE_CHOICES, chosen_options, default_value, fields, in_dialog_words

LOGGER = logging.getLogger(__name__)

MENU_LABEL = TITLE


def start_gui(images=(), options=None, *, fiji_dir=None):
    """Start ImageJ with its window, add the menu entry, open ``images``; returns the menu item."""
    start_imagej(fiji_dir, gui=True)
    item = install_menu(options)
    IJ = jimport("ij.IJ")
    for path in images:
        imp = IJ.openImage(str(path))
        if imp is None:
            IJ.error(TITLE, f"ImageJ cannot open {path}")
        else:
            imp.show()
    return item


def install_menu(options=None):
    """Add the entry to ImageJ's Plugins menu (once) and return the ``java.awt.MenuItem``."""
    plugins = plugins_menu()
    for i in range(plugins.getItemCount()):
        if str(plugins.getItem(i).getLabel()) == MENU_LABEL:
            return plugins.getItem(i)
    item = jimport("java.awt.MenuItem")(MENU_LABEL)
    item.addActionListener(_listener(options or FijiOptions()))
    plugins.add(item)
    return item


def plugins_menu():
    """ImageJ's Plugins menu (needs ImageJ's window)."""
    bar = jimport("ij.Menus").getMenuBar()
    if bar is None:
        raise RuntimeError("ImageJ has no menu bar: it was started without its window")
    for i in range(bar.getMenuCount()):
        if str(bar.getMenu(i).getLabel()) == "Plugins":
            return bar.getMenu(i)
    raise RuntimeError("ImageJ's menu bar has no Plugins menu")


def _listener(options):
    from jpype import JImplements, JOverride

    @JImplements("java.awt.event.ActionListener")
    class RunOnCurrentImage:
        @JOverride
        def actionPerformed(self, event):
            # Off the AWT event thread, so ImageJ's window stays responsive while the model runs.
            threading.Thread(target=run_on_current_image, args=(options,), name="focus-quality").start()

    return RunOnCurrentImage()


def ask_options(imp, defaults):
    """The command's options from ImageJ's dialog, starting at ``defaults``; None if the user cancels.

    Stack options (which planes, go to / duplicate the best plane) appear for stacks only.
    """
    dialog = jimport("ij.gui.GenericDialog")(TITLE)
    stack = imp.getStackSize() > 1
    shown = fields(stack)
    for field in shown:
        default = default_value(field, defaults)
        if field.kind == "choice":
            dialog.addChoice(field.label, list(PLANE_CHOICES.values()), default)
        elif field.kind == "number":
            dialog.addNumericField(field.label, default, 0)
        else:
            dialog.addCheckbox(field.label, default)
    dialog.showDialog()
    if dialog.wasCanceled():
        return None
    read = {"choice": lambda: str(dialog.getNextChoice()), "number": lambda: float(dialog.getNextNumber()),
            "checkbox": lambda: bool(dialog.getNextBoolean())}
    return chosen_options(defaults, {field.option: read[field.kind]() for field in shown}, stack)


def run_on_current_image(options):
    """What the menu entry does; returns the FocusRun, or None after telling the user why not (or a cancel)."""
    IJ = jimport("ij.IJ")
    imp = jimport("ij.WindowManager").getCurrentImage()
    if imp is None:
        IJ.noImage()
        return None
    chosen = ask_options(imp, options)
    if chosen is None:
        return None
    try:
        run = run_focus_quality(imp, **chosen.command_kwargs())
    except ImageError as exc:
        IJ.error(TITLE, in_dialog_words(str(exc)))
        return None
    except Exception as exc:  # a broken model must not vanish silently into the event thread
        LOGGER.exception("focus command failed")
        IJ.error(TITLE, f"The focus model failed: {exc}")
        return None
    imp.updateAndDraw()
    run.table.show(TABLE_TITLE)
    for image in (run.probability_image, run.best_image):
        if image is not None:
            image.show()
    return run


def wait_until_closed(poll_seconds=0.5):
    """Block until the user quits ImageJ (its main window is gone)."""
    import time

    IJ = jimport("ij.IJ")
    while IJ.getInstance() is not None:
        time.sleep(poll_seconds)
