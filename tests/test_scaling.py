"""The intensity scale rule and every bad-input case gets a clear ImageError."""
import numpy as np
import pytest

from model import ImageError, to_model_scale


def test_uint16_is_counts_over_65535():
    img = np.full((84, 84), 6553, np.uint16)
    np.testing.assert_allclose(to_model_scale(img), 6553 / 65535)


def test_uint8_spans_full_scale():
    img = np.full((84, 84), 255, np.uint8)
    np.testing.assert_allclose(to_model_scale(img), 1.0)


def test_float_in_unit_range_is_used_as_is():
    img = np.full((84, 84), 0.25, np.float64)
    out = to_model_scale(img)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 0.25)


def test_cellprofiler_float_equals_uint16_counts(in_focus_image):
    """CellProfiler hands 16-bit files over divided by 65535: same model input as the raw file."""
    np.testing.assert_allclose(to_model_scale(in_focus_image / 65535.0), to_model_scale(in_focus_image), rtol=1e-6)


def test_max_value_override():
    img = np.full((84, 84), 1000.0)
    np.testing.assert_allclose(to_model_scale(img, max_value=65535), 1000 / 65535)


@pytest.mark.parametrize("image, message", [
    (np.zeros((100, 100, 3), np.uint8), "RGB"),
    (np.zeros((100, 100, 4), np.uint8), "RGBA"),
    (np.zeros((5, 100, 100), np.uint16), "3 dimensions"),
    (np.zeros((100,), np.uint16), "1 dimensions"),
    (np.zeros((0, 0), np.uint16), "empty"),
    (np.zeros((83, 500), np.uint16), "smaller than one 84x84 patch"),
    (np.zeros((100, 100), bool), "data type bool"),
    (np.full((100, 100), np.nan), "NaN or infinite"),
    (np.full((100, 100), np.inf), "NaN or infinite"),
    (np.full((100, 100), 2.0), "Pass max_value"),
    (np.full((100, 100), -0.1), "outside"),
    (np.full((100, 100), 70000, np.int32), "outside 0..65535"),
    ([[1, 2], [3]], "cannot be read as an array"),
])
def test_bad_input_is_refused_with_a_reason(image, message):
    with pytest.raises(ImageError, match=message):
        to_model_scale(image)


def test_bad_max_value():
    with pytest.raises(ImageError, match="positive"):
        to_model_scale(np.zeros((84, 84)), max_value=0)
