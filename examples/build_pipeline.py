"""Regenerate ``measure_focus.cppipe`` with CellProfiler's own API.

    python examples/build_pipeline.py   # in an environment with CellProfiler and this package

Images -> NamesAndTypes (every image is "DNA") -> MeasureImageFocus (annotated
image and patch objects) -> SaveImages (the annotated PNG) -> ExportToSpreadsheet.
"""
from pathlib import Path

import cellprofiler_core.preferences as cpprefs

HERE = Path(__file__).resolve().parent
PLUGINS = HERE.parent / "cellprofiler_plugin"


def build():
    cpprefs.set_headless()
    cpprefs.set_plugin_directory(str(PLUGINS), globally=False)
    import cellprofiler_core.modules  # noqa: F401  (discovers the built-in modules and the plugin)
    from cellprofiler_core.pipeline import Pipeline
    from cellprofiler_core.utilities.core.modules import instantiate_module

    pipeline = Pipeline()
    names = ["Images", "Metadata", "NamesAndTypes", "Groups", "MeasureImageFocus", "SaveImages",
             "ExportToSpreadsheet"]
    for number, name in enumerate(names, start=1):
        module = instantiate_module(name)
        module.set_module_num(number)
        pipeline.add_module(module)
    m = {module.module_name: module for module in pipeline.modules()}
    m["NamesAndTypes"].assignment_method.value = "All images"
    m["NamesAndTypes"].single_image_provider.value = "DNA"
    focus = m["MeasureImageFocus"].images[0]
    focus.image_name.value = "DNA"
    focus.wants_overlay.value = True
    focus.wants_patches.value = True
    save = m["SaveImages"]
    save.image_name.value = "FocusOverlay"
    save.file_name_method.value = "From image filename"
    save.file_image_name.value = "DNA"
    save.wants_file_name_suffix.value = True
    save.file_name_suffix.value = "_focus"
    save.file_format.value = "png"
    save.overwrite.value = True
    export = m["ExportToSpreadsheet"]
    export.prefix.value = "Focus_"
    export.wants_overwrite_without_warning.value = True
    with open(HERE / "measure_focus.cppipe", "w") as fd:
        pipeline.dump(fd, save_image_plane_details=False)


if __name__ == "__main__":
    build()
