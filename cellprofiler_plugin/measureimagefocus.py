"""
MeasureImageFocus
=================

**MeasureImageFocus** says how far out of focus an image is, on an absolute
scale from one image alone, with a deep-learning model (Yang et al. 2018).

The image is cut into 84x84 pixel patches. For each patch the model gives the
probability of each of 11 defocus levels, from 0 (in focus) to 10 (a blur of
about 30 pixels), and a certainty that is low where the patch shows only
background. The whole-image result weights each patch by its certainty, so
empty areas barely count. No threshold has to be set.

This is a drop-in replacement for the unmaintained TensorFlow 1 plugin of the
same name: *Score* and *Certainty* keep their names (now stored as numbers).
The model ships with the plugin and is loaded once per CellProfiler process.
The network runs in NumPy in CellProfiler's window (TensorFlow cannot be loaded
next to the window's OpenGL libraries on many Linux desktops) and wherever
TensorFlow is not installed, as in the CellProfiler app; headless runs use
TensorFlow where it is installed, which is faster. Both give the same numbers.

|

============ ============ ===============
Supports 2D? Supports 3D? Respects masks?
============ ============ ===============
YES          NO           NO
============ ============ ===============

Intensity scale
^^^^^^^^^^^^^^^

The model was trained on raw camera counts divided by 65535. Leave
**NamesAndTypes** > *Set intensity range from* at *Image metadata* (the
default): 16-bit images arrive divided by 65535, 12-bit images by 4095, and
this module uses the image's recorded scale to bring both back to raw counts.
8-bit images are used as they are (0-255 spans the full scale). If an earlier
module rescales the image (e.g. RescaleIntensity), the rescaled values are used,
and a stretched dim image looks brighter to the model than it was.

Measurements made by this module
^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^

Per image, for each measured image *<image>* (all numbers):

-  *ImageFocus_Score_<image>*: the most probable defocus level of the whole
   image, 0 (in focus) to 10 (out of focus). Lower is better.
-  *ImageFocus_Certainty_<image>*: the certainty of the whole-image
   distribution, 0 (no idea, e.g. an empty field) to 1.
-  *ImageFocus_ExpectedLevel_<image>*: the probability-weighted mean level, a
   continuous score (0-10) for ranking images or picking the best plane. Lower
   is better.
-  *ImageFocus_InFocus_<image>*: 1 if at least half of the whole-image
   probability lies on levels 0-2, else 0.
-  *ImageFocus_MeanCertainty_<image>*, *ImageFocus_MaxCertainty_<image>*:
   the mean and the highest patch certainty.
-  *ImageFocus_WeightedCertainty_<image>*: the certainty-weighted mean patch
   certainty.
-  *ImageFocus_PatchCount_<image>*: the number of patches assessed.
-  *ImageFocus_EmptyPatches_<image>*: how many of them had nothing to judge
   (constant, zero-filled, saturated, or no structure above the camera noise);
   they get certainty 0 and do not count in the whole-image result. If every
   patch is empty, Score, ExpectedLevel and InFocus are NaN.
-  *ImageFocus_Probability0_<image>* ... *ImageFocus_Probability10_<image>*:
   the whole-image probability of each level.

If an image cannot be assessed (colour, smaller than 84x84, values outside
the intensity scale), all its measurements are NaN, PatchCount is 0, and the
reason is logged and shown in the module's window; the rest of the run goes on.

Per patch, when patches are saved as objects (one object per patch):

-  *ImageFocus_Level* (NaN for a patch with nothing to judge),
   *ImageFocus_Certainty*, *ImageFocus_Empty* (1 or 0) and
   *ImageFocus_Probability0* ... *ImageFocus_Probability10* of the patch,
-  *Location_Center_X/Y*, *Number_Object_Number* and the image's
   *Count_<objects>*, as for any objects.

References
^^^^^^^^^^

-  Yang SJ, Berndl M, Ando DM, Barch M, Narayanaswamy A, Christiansen E,
   Hoyer S, Roat C, Hung J, Rueden CT, Shankar A, Finkbeiner S, Nelson P
   (2018) "Assessing microscope image focus quality with deep learning."
   *BMC Bioinformatics* 19:77. `(link) <https://doi.org/10.1186/s12859-018-2087-4>`__
"""
import logging
import sys
import textwrap

import numpy as np
import cellprofiler_core.preferences
from cellprofiler_core.constants.measurement import COLTYPE_FLOAT, IMAGE
from cellprofiler_core.image import Image
from cellprofiler_core.module import Module
from cellprofiler_core.object import Objects
from cellprofiler_core.setting import Binary, Divider, SettingsGroup, ValidationError
from cellprofiler_core.setting.do_something import DoSomething, RemoveSettingButton
from cellprofiler_core.setting.subscriber import ImageSubscriber
from cellprofiler_core.setting.text import ImageName, Integer, LabelName
from cellprofiler_core.utilities.core.module.identify import (
    add_object_count_measurements,
    add_object_location_measurements,
    get_object_measurement_columns,
)

from model.constants import NUM_LEVELS
from model.inference import predict
from model.overlay import annotate
from model.predictor import ModelError, load_model
from model.scaling import ImageError, in_host_words, max_value_for_scale
from model.tiling import patch_labels

LOGGER = logging.getLogger(__name__)

C_IMAGE_FOCUS = "ImageFocus"

#: :data:`model.scaling.MAX_VALUE_ADVICE` in CellProfiler's terms: the module has no scale setting.
MAX_VALUE_ADVICE = ('Divide it by its full scale first: RescaleIntensity, "Divide each image by the same value" '
                    "(65535 if the values are raw camera counts).")

#: Per-image feature -> key of FocusResult.summary(); Score and Certainty are the original plugin's names.
IMAGE_FEATURES = {
    "Score": "predicted_level",
    "Certainty": "aggregate_certainty",
    "ExpectedLevel": "expected_level",
    "InFocus": "in_focus",
    "MeanCertainty": "mean_certainty",
    "MaxCertainty": "max_certainty",
    "WeightedCertainty": "weighted_certainty",
    "PatchCount": "patch_count",
    "EmptyPatches": "empty_patches",
    **{f"Probability{k}": f"probability_{k}" for k in range(NUM_LEVELS)},
}
#: Per-patch (object) feature -> key of FocusResult.patch_rows() rows.
PATCH_FEATURES = {
    "Level": "level",
    "Certainty": "certainty",
    "Empty": "empty",
    **{f"Probability{k}": f"probability_{k}" for k in range(NUM_LEVELS)},
}

#: Shared settings come first; then this many per measured image.
SHARED_SETTING_COUNT = 3
SETTINGS_PER_IMAGE = 5


class MeasureImageFocus(Module):
    module_name = "MeasureImageFocus"
    category = "Measurement"
    variable_revision_number = 2
    doi = {"Please cite the following when using MeasureImageFocus:":
           "https://doi.org/10.1186/s12859-018-2087-4"}

    def create_settings(self):
        self.cover_image = Binary(
            "Cover the whole image with patches?", True,
            doc="""\
Select *Yes* to assess as many 84x84 patches as fit in the image (the leftover
margin, less than one patch, is split evenly around them). Select *No* to
assess fewer patches, spread evenly: faster on large images.""")
        self.tile_rows = Integer(
            "Number of patch rows", 4, minval=1,
            doc="Patches along the image height, spread evenly. At most height / 84.")
        self.tile_columns = Integer(
            "Number of patch columns", 4, minval=1,
            doc="Patches along the image width, spread evenly. At most width / 84.")
        self.images = []
        self.add_image(can_remove=False)
        self.add_image_button = DoSomething("", "Add another image", self.add_image)

    def add_image(self, can_remove=True):
        group = SettingsGroup()
        group.append("image_name", ImageSubscriber(
            "Select an image to measure", "None",
            doc="""\
A grayscale image, e.g. a nuclear stain. Colour images are not assessed (their
measurements are NaN); use ColorToGray first."""))
        group.append("wants_overlay", Binary(
            "Save the annotated image?", False,
            doc="""\
Select *Yes* to make an RGB image of the input with a coloured border around
each patch (hue = level, red in focus to blue out of focus; brightness =
certainty) and a legend below. SaveImages can then save it."""))
        group.append("overlay_name", ImageName(
            "Name the annotated image", "FocusOverlay",
            doc="The name later modules (e.g. SaveImages) use for the annotated image."))
        group.append("wants_patches", Binary(
            "Save the patches as objects?", False,
            doc="""\
Select *Yes* to create one object per patch, carrying the patch's level,
certainty and level probabilities as object measurements, so that patches can
be filtered (FilterObjects), counted or exported downstream."""))
        group.append("patches_name", LabelName(
            "Name the patch objects", "FocusPatches",
            doc="The name later modules use for the patch objects."))
        if can_remove:
            group.append("remover", RemoveSettingButton("", "Remove this image", self.images, group))
        group.append("divider", Divider(line=True))
        self.images.append(group)

    def settings(self):
        result = [self.cover_image, self.tile_rows, self.tile_columns]
        for group in self.images:
            result += [group.image_name, group.wants_overlay, group.overlay_name,
                       group.wants_patches, group.patches_name]
        return result

    def visible_settings(self):
        result = [self.cover_image]
        if not self.cover_image.value:
            result += [self.tile_rows, self.tile_columns]
        for group in self.images:
            result += [group.image_name, group.wants_overlay]
            if group.wants_overlay.value:
                result.append(group.overlay_name)
            result.append(group.wants_patches)
            if group.wants_patches.value:
                result.append(group.patches_name)
            if hasattr(group, "remover"):
                result.append(group.remover)
            result.append(group.divider)
        result.append(self.add_image_button)
        return result

    def prepare_settings(self, setting_values):
        count = (len(setting_values) - SHARED_SETTING_COUNT) // SETTINGS_PER_IMAGE
        del self.images[count:]
        while len(self.images) < count:
            self.add_image()

    def upgrade_settings(self, setting_values, variable_revision_number, module_name):
        if variable_revision_number == 1:
            # The TensorFlow 1 plugin had one setting, the image; it always covered the image.
            setting_values = ["Yes", "4", "4", setting_values[0], "No", "FocusOverlay", "No", "FocusPatches"]
            variable_revision_number = 2
        return setting_values, variable_revision_number

    def volumetric(self):
        return False

    def validate_module(self, pipeline):
        names = [group.image_name.value for group in self.images]
        for group in self.images:
            if names.count(group.image_name.value) > 1:
                raise ValidationError(f"{group.image_name.value} is measured twice", group.image_name)

    def _tile_counts(self):
        if self.cover_image.value:
            return None, None
        return self.tile_rows.value, self.tile_columns.value

    def prepare_run(self, workspace):
        """Load the model before the first image, so that a damaged or missing model stops the run with its reason."""
        try:
            _model()
        except ModelError as exc:
            LOGGER.error("%s", exc)  # headless CellProfiler shows no prepare-run errors itself
            workspace.pipeline.report_prepare_run_error(self, str(exc))  # the window: an error box
            return False
        return True

    def run(self, workspace):
        n_rows, n_cols = self._tile_counts()
        model = _model()  # test mode in the window skips prepare_run: a ModelError is its error box
        shown = []
        for group in self.images:
            name = group.image_name.value
            image = workspace.image_set.get_image(name)
            reason = ""
            try:
                result = predict(image.pixel_data, n_rows=n_rows, n_cols=n_cols,
                                 max_value=max_value_for_scale(image.scale), model=model)
            except ImageError as exc:
                reason = in_host_words(exc, name, MAX_VALUE_ADVICE)
                LOGGER.warning("MeasureImageFocus cannot assess image %s: %s", name, reason)
                result = None
            summary = result.summary() if result is not None else {}
            self._add_image_measurements(workspace, name, summary)
            if group.wants_patches.value:
                self._add_patch_objects(workspace, group.patches_name.value, image, result)
            overlay = None
            if result is not None and (group.wants_overlay.value or self.show_window):
                overlay = annotate(image.pixel_data, result)
            if group.wants_overlay.value:
                pixels = (overlay / 255.0) if overlay is not None else np.zeros(image.pixel_data.shape[:2] + (3,))
                workspace.image_set.add(group.overlay_name.value, Image(pixels, convert=False))
            shown.append((name, overlay, _summary_rows(summary, reason)))
        if self.show_window:
            workspace.display_data.shown = shown

    @staticmethod
    def _add_image_measurements(workspace, name, summary):
        for feature, key in IMAGE_FEATURES.items():
            default = 0.0 if feature in ("PatchCount", "EmptyPatches") else np.nan
            workspace.measurements.add_image_measurement(
                _image_feature(feature, name), float(summary.get(key, default)))

    @staticmethod
    def _add_patch_objects(workspace, objects_name, image, result):
        shape = image.pixel_data.shape[:2]
        objects = Objects()
        objects.segmented = (patch_labels(result.patch_origins, shape) if result is not None
                             else np.zeros(shape, np.int32))
        objects.parent_image = image
        workspace.object_set.add_objects(objects, objects_name)
        count = 0 if result is None else result.patch_count
        add_object_count_measurements(workspace.measurements, objects_name, count)
        add_object_location_measurements(workspace.measurements, objects_name, objects.segmented, count)
        rows = list(result.patch_rows()) if result is not None else []
        for feature, key in PATCH_FEATURES.items():
            workspace.measurements.add_measurement(
                objects_name, _patch_feature(feature), np.array([row[key] for row in rows], dtype=float))

    def display(self, workspace, figure):
        shown = workspace.display_data.shown
        figure.set_subplots((2, len(shown)))
        for i, (name, overlay, rows) in enumerate(shown):
            if overlay is not None:  # CellProfiler shows RGB floats in 0-1
                figure.subplot_imshow_color(0, i, overlay / 255.0, title=f"Focus of {name}")
            else:  # no empty axes beside the table that says why
                figure.subplot(0, i).set_axis_off()
            figure.subplot_table(1, i, rows, col_labels=["Measurement", "Value"])

    def _measured(self):
        return [group.image_name.value for group in self.images]

    def _patch_objects(self):
        return [group.patches_name.value for group in self.images if group.wants_patches.value]

    def get_measurement_columns(self, pipeline):
        columns = [(IMAGE, _image_feature(feature, name), COLTYPE_FLOAT)
                   for name in self._measured() for feature in IMAGE_FEATURES]
        for objects_name in self._patch_objects():
            columns += get_object_measurement_columns(objects_name)
            columns += [(objects_name, _patch_feature(feature), COLTYPE_FLOAT) for feature in PATCH_FEATURES]
        return columns

    def get_categories(self, pipeline, object_name):
        if object_name == IMAGE:
            return [C_IMAGE_FOCUS] + (["Count"] if self._patch_objects() else [])
        if object_name in self._patch_objects():
            return [C_IMAGE_FOCUS, "Location", "Number"]
        return []

    def get_measurements(self, pipeline, object_name, category):
        if object_name == IMAGE and category == C_IMAGE_FOCUS:
            return list(IMAGE_FEATURES)
        if object_name == IMAGE and category == "Count":
            return self._patch_objects()
        if object_name in self._patch_objects():
            return {C_IMAGE_FOCUS: list(PATCH_FEATURES), "Location": ["Center_X", "Center_Y"],
                    "Number": ["Object_Number"]}.get(category, [])
        return []

    def get_measurement_images(self, pipeline, object_name, category, measurement):
        if object_name == IMAGE and category == C_IMAGE_FOCUS and measurement in IMAGE_FEATURES:
            return self._measured()
        return []


def in_gui_process():
    """Whether this process shows CellProfiler's window (wx loaded): then TensorFlow must stay out of it."""
    return "wx" in sys.modules or not cellprofiler_core.preferences.get_headless()


def _model():
    """The shipped model, in NumPy in the window's process, else on the default backend (loaded once)."""
    try:
        return load_model(backend="numpy" if in_gui_process() else None)
    except ModelError as exc:
        raise ModelError(f"MeasureImageFocus cannot load its model: {exc}") from None


def _image_feature(feature, image_name):
    return f"{C_IMAGE_FOCUS}_{feature}_{image_name}"


def _patch_feature(feature):
    return f"{C_IMAGE_FOCUS}_{feature}"


def _summary_rows(summary, reason=""):
    """The window's table: the measurements, or why the image was not assessed (the app hides its log)."""
    if not summary:
        lines = textwrap.wrap(reason, 50) or [""]
        return [("Score", "not assessed"), ("Why", lines[0]), *(("", line) for line in lines[1:])]
    return [(feature, f"{float(summary[key]):.4g}") for feature, key in IMAGE_FEATURES.items()]
