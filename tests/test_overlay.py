"""Annotated images: hue by level, brightness by certainty, legend below."""
import numpy as np

from model import predict
from model.overlay import annotate, border_width, display_gray, legend, level_color, level_color_8bit, verdict


def test_colours_hue_by_level_brightness_by_certainty():
    assert level_color(0).tolist() == [1.0, 0.0, 0.0]
    assert level_color(10).tolist() == [0.0, 0.0, 1.0]
    np.testing.assert_allclose(level_color(4, 0.5), level_color(4) * 0.5)
    hues = [tuple(level_color(k)) for k in range(11)]
    assert len(set(hues)) == 11


def test_annotated_image_has_patch_borders(shipped_model, in_focus_image):
    r = predict(in_focus_image)
    rgb = annotate(in_focus_image, r)
    assert rgb.dtype == np.uint8 and rgb.shape[1:] == (696, 3) and rgb.shape[0] > 520
    w = border_width(in_focus_image.shape)
    for (row, col), level, cert in zip(r.patch_origins, r.patch_levels, r.patch_certainties):
        expected = (255 * level_color(level, cert)).astype(np.uint8)
        np.testing.assert_array_equal(rgb[row, col + 40], expected)
        np.testing.assert_array_equal(rgb[row + 40, col + w - 1], expected)
        assert not np.array_equal(rgb[row + 40, col + 40], expected) or expected.max() == 0


def test_an_image_with_nothing_to_judge_is_drawn_with_that_verdict(shipped_model):
    blank = np.full((300, 300), 100, np.uint16)
    result = predict(blank)
    assert not result.judged and verdict(result) == "nothing to judge"
    rgb = annotate(blank, result)
    assert rgb.shape[1:] == (300, 3) and rgb.shape[0] > 300
    assert rgb[300:].max() == 255  # the legend's white verdict and colour boxes are drawn


def test_the_legend_fits_any_image_width(shipped_model, in_focus_image):
    """Narrow images get a taller legend: the verdict wraps, the labels go below the 11 colours, none cut off."""
    result = predict(in_focus_image)
    strips = {width: legend(result, width) for width in (84, 120, 250, 330, 696, 1400)}
    for width, strip in strips.items():
        assert strip.shape[1] == width
        assert strip[:, :2].max() == 0 and strip[:, -2:].max() == 0, width  # nothing runs off either side
        colours = {tuple(c) for c in strip.reshape(-1, 3)}
        assert all(tuple(level_color_8bit(k)) in colours for k in range(11)), width
    assert strips[84].shape[0] > strips[250].shape[0] > 56
    assert strips[696].shape[0] == 69 and strips[1400].shape[0] == 140  # wide images keep the one-row legend


def test_non_finite_pixels_outside_the_patches_are_drawn_black():
    image = np.tile(np.linspace(0, 1000, 200, dtype=np.float32), (200, 1))
    image[:5, :5] = np.nan
    image[-5:, -5:] = np.inf
    gray = display_gray(image)
    assert gray[:5, :5].max() == 0 and gray[-5:, -5:].max() == 0
    assert gray[100, 0] == 0 and gray[100, 199] == 255
