"""A self-contained CellProfiler plugins folder: what a user of the CellProfiler app unzips.

The app is a frozen Python (3.8 for CellProfiler 4.2) with CellProfiler's own
dependencies and nothing can be pip-installed into it. So the folder holds the
module, the part of the core it imports (found by following the core's relative
imports, so it cannot drift from the code) and the NumPy weights: the network
runs in NumPy there (:mod:`model.numpy_network`). A plugins folder is on
CellProfiler's ``sys.path`` and shared with the user's other plugins, so the
core goes in under :data:`CORE_PACKAGE`, a name no other plugin has.
"""
import ast
import shutil
import tempfile
import zipfile
from pathlib import Path

import model
from model.numpy_network import WEIGHTS_FILE
from model.predictor import DEFAULT_MODEL_DIR, write_checksums

MODULE_FILE = Path(__file__).resolve().with_name("measureimagefocus.py")
CORE_DIR = Path(model.__file__).resolve().parent

#: The core's package name inside the plugins folder.
CORE_PACKAGE = "measureimagefocus_core"

#: The folder a zip unpacks to.
ZIP_FOLDER = "MeasureImageFocus"


def write_plugin_folder(folder):
    """Write the module and its core into the plugins folder ``folder`` (created; other plugins are kept).

    Returns the paths written at the folder's top level.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    core = folder / CORE_PACKAGE
    if core.exists():
        shutil.rmtree(core)
    (core / DEFAULT_MODEL_DIR.name).mkdir(parents=True)
    for name in core_modules():
        shutil.copy2(CORE_DIR / f"{name}.py", core / f"{name}.py")
    shutil.copy2(DEFAULT_MODEL_DIR / WEIGHTS_FILE, core / DEFAULT_MODEL_DIR.name / WEIGHTS_FILE)
    write_checksums(core / DEFAULT_MODEL_DIR.name)
    source = MODULE_FILE.read_text()
    rewritten = source.replace("from model.", f"from {CORE_PACKAGE}.")
    if rewritten == source:
        raise RuntimeError(f"{MODULE_FILE} no longer imports the core as `from model.`; update {__file__}")
    (folder / MODULE_FILE.name).write_text(rewritten)
    return [folder / MODULE_FILE.name, core]


def write_plugin_zip(path):
    """The plugins folder as a zip holding one folder, :data:`ZIP_FOLDER`: the file users download."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / ZIP_FOLDER
        write_plugin_folder(root)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(root.rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(scratch).as_posix())
    return path


def core_modules():
    """The core modules the plugin needs: those it imports, and theirs (relative imports), by name."""
    wanted = {"__init__", *_imports(MODULE_FILE.read_text(), absolute="model")}
    found = set()
    while wanted - found:
        name = min(wanted - found)
        found.add(name)
        wanted.update(_imports((CORE_DIR / f"{name}.py").read_text()))
    return sorted(found)


def _imports(source, absolute=None):
    """Modules of the core package named by ``source``: relative imports, or ``from <absolute>.x`` ones."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom):
            continue
        module = node.module or ""
        if absolute is None and node.level == 1:
            names.update([module.split(".")[0]] if module else [a.name for a in node.names])
        elif absolute is not None and node.level == 0 and module.startswith(f"{absolute}."):
            names.add(module.split(".")[1])
    return names
