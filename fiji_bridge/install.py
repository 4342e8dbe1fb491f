"""``focus-quality install-fiji DIR``: the command in Fiji (or ImageJ) as started by its own launcher.

It writes one ImageJ macro, ``plugins/Microscope_Image_Focus_Quality.ijm``;
ImageJ turns it into *Plugins > Microscope Image Focus Quality* at its next
start. The macro asks for the options with the command's dialog
(:mod:`fiji_bridge.dialog`), which also makes it recordable and callable as
``run("Microscope Image Focus Quality", "...")``, and hands the image to this
Python environment (:mod:`fiji_bridge.macro_client`). Nothing is compiled and
nothing runs Java code of its own, so any ImageJ1 or Fiji takes it.

``--uninstall`` removes that file, and only if this package wrote it.
"""
from importlib import metadata
from pathlib import Path

from .batch import FijiOptions
from .table import DECIMALS
from .dialog import FIELDS, PLANE_CHOICES, default_value

MACRO_NAME = "Microscope_Image_Focus_Quality.ijm"
#: A line in every macro this package writes, so that uninstalling never removes a user's file of that name.
MARKER = "installed-by: focus-quality install-fiji"
TEMPLATE = Path(__file__).with_name(MACRO_NAME)


class InstallError(ValueError):
    """DIR is not an ImageJ or Fiji folder, or holds a file of ours that is not ours."""


def plugins_folder(imagej_dir):
    """``DIR/plugins`` of a Fiji.app or ImageJ folder (created in an ImageJ folder that lacks it)."""
    imagej_dir = Path(imagej_dir).expanduser()
    plugins = imagej_dir / "plugins"
    if plugins.is_dir():
        return plugins
    if not imagej_dir.is_dir():
        raise InstallError(f"{imagej_dir} does not exist: give the Fiji.app or ImageJ folder")
    if (imagej_dir / "jars").is_dir() or (imagej_dir / "ij.jar").is_file():
        plugins.mkdir()
        return plugins
    raise InstallError(f"{imagej_dir} is not a Fiji or ImageJ folder: it has no plugins/ or jars/ folder and no "
                       "ij.jar (on macOS give Fiji.app itself)")


def install(imagej_dir, python):
    """Write the macro into ``imagej_dir``'s plugins folder for the Python ``python``; returns its path."""
    path = plugins_folder(imagej_dir) / MACRO_NAME
    if path.exists() and MARKER not in path.read_text(errors="replace"):
        raise InstallError(f"{path} exists and was not written by focus-quality; move it away first")
    path.write_text(render(Path(imagej_dir).expanduser().resolve(), Path(python)))
    return path


def uninstall(imagej_dir):
    """Remove the macro this package wrote; returns its path, or None if there was none."""
    path = plugins_folder(imagej_dir) / MACRO_NAME
    if not path.exists():
        return None
    if MARKER not in path.read_text(errors="replace"):
        raise InstallError(f"{path} was not written by focus-quality; left as it is")
    path.unlink()
    return path


def render(imagej_dir, python):
    """The macro's text for this environment's Python and ImageJ folder."""
    client = Path(__file__).with_name("macro_client.py").resolve()
    dialog, read = [], []
    for field in FIELDS:
        guard = "if (stack) " if field.stack_only else ""
        default = default_value(field, FijiOptions())
        if field.kind == "choice":
            choices = ", ".join(_string(c) for c in PLANE_CHOICES.values())
            dialog.append(f"{guard}Dialog.addChoice({_string(field.label)}, newArray({choices}), {_string(default)});")
            value = "Dialog.getChoice()"
        elif field.kind == "number":
            dialog.append(f"{guard}Dialog.addNumber({_string(field.label)}, {default});")
            value = "Dialog.getNumber()"
        else:
            dialog.append(f"{guard}Dialog.addCheckbox({_string(field.label)}, {str(default).lower()});")
            value = "Dialog.getCheckbox()"
        read.append((f'{field.option} = ""; ' if guard else "") + f"{guard}{field.option} = {value};")
    arguments = ", ".join(f'"{f.option}=" + {f.option}' for f in FIELDS)
    values = {"VERSION": metadata.version("microscope-focus-quality"), "IMAGEJ_DIR": _escape(str(imagej_dir)),
              "PYTHON": _escape(str(python)), "CLIENT": _escape(str(client)), "MARKER": MARKER, "DECIMALS": str(DECIMALS),
              "DIALOG": "\n".join(dialog), "READ": "\n".join(read), "ARGUMENTS": arguments}
    text = TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _escape(text):
    """Text inside a macro string literal (Windows paths have backslashes)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _string(text):
    return f'"{_escape(text)}"'
