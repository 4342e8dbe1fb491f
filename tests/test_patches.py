"""Patches streamed band by band, and the rule for patches with nothing to judge."""
import numpy as np
import pytest

from model import ImageError, predict
from model.constants import PATCH_SIZE
from model.patches import nothing_to_judge, patch_rows, rebatch
from model.scaling import scale_factor
from model.tiling import tile_grid


class RowRecorder:
    """An ndarray that records which row ranges are read from it."""

    def __init__(self, array):
        self.array, self.reads = array, []
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, key):
        self.reads.append((key.start, key.stop))
        return self.array[key]


def test_rows_keep_patches_in_order_and_rebatch_scales_them():
    image = (np.arange(300 * 400) % 65536).astype(np.uint16).reshape(300, 400)
    origins, _ = tile_grid(image.shape)
    rows = list(patch_rows(image, origins))
    assert [at.tolist() for at, _ in rows] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    for (r, c), patch in zip(origins, np.concatenate([p for _, p in rows])):
        np.testing.assert_array_equal(patch, image[r:r + PATCH_SIZE, c:c + PATCH_SIZE])
    (at, patches), = rebatch(rows, len(origins), scale=scale_factor(image.dtype))
    assert at.tolist() == list(range(len(origins)))
    assert patches.dtype == np.float32 and patches.flags.c_contiguous
    for (r, c), patch in zip(origins, patches):
        np.testing.assert_allclose(patch, image[r:r + PATCH_SIZE, c:c + PATCH_SIZE] / 65535, rtol=1e-6)


def test_rebatch_fills_every_batch_but_the_last():
    pieces = [(np.arange(n) + 10 * k, np.full((n, 2), k)) for k, n in enumerate([3, 0, 4, 1, 6])]
    batches = list(rebatch(pieces, 5))
    assert [len(at) for at, _ in batches] == [5, 5, 4]
    at = np.concatenate([a for a, _ in batches])
    items = np.concatenate([x for _, x in batches])
    assert at.tolist() == [0, 1, 2, 20, 21, 22, 23, 30, 40, 41, 42, 43, 44, 45]
    assert items[:, 0].tolist() == [0, 0, 0, 2, 2, 2, 2, 3, 4, 4, 4, 4, 4, 4]
    assert items.dtype == np.float32


def test_a_row_longer_than_a_batch_is_split():
    pieces = [(np.arange(7), np.arange(7)[:, None] * np.ones(3))]
    assert [x[:, 0].tolist() for _, x in rebatch(pieces, 3, scale=2.0)] == [[0, 2, 4], [6, 8, 10], [12]]


def test_only_the_rows_under_the_patches_are_read():
    image = RowRecorder(np.zeros((1000, 300), np.uint16))
    origins, _ = tile_grid(image.shape, n_rows=3, n_cols=2)
    list(patch_rows(image, origins))
    assert image.reads == [(int(r), int(r) + PATCH_SIZE) for r in sorted(set(origins[:, 0]))]


def test_values_are_checked_on_the_patches():
    image = np.full((200, 200), 0.5)
    image[50, 50] = np.nan  # under the first patch (patches start at 10 and 105)
    with pytest.raises(ImageError, match="NaN"):
        list(patch_rows(image, tile_grid(image.shape)[0]))


def patch(values):
    return np.broadcast_to(np.asarray(values, dtype=np.float32), (PATCH_SIZE, PATCH_SIZE)).copy()


def test_nothing_to_judge_rule(rng):
    yy, xx = np.mgrid[:PATCH_SIZE, :PATCH_SIZE]
    background = 0.01 + 0.0005 * rng.standard_normal((PATCH_SIZE, PATCH_SIZE))
    cell = background + 0.03 * (np.hypot(yy - 40, xx - 40) < 10)
    half_zero = cell.copy()
    half_zero[:, :42] = 0
    mostly_saturated = cell.copy()
    mostly_saturated[:, :81] = 1.0
    gradient = 0.01 + 0.02 * xx / PATCH_SIZE + 0.0005 * rng.standard_normal((PATCH_SIZE, PATCH_SIZE))
    cases = {"zero-filled": (patch(0), True), "constant": (patch(0.3), True), "saturated": (patch(1.0), True),
             "clipped except 3 columns": (mostly_saturated, True), "camera noise": (background, True),
             "cell": (cell, False), "cell beside a zero-filled half": (half_zero, False),
             "smooth gradient (a blurred cell)": (gradient, False)}
    verdict = nothing_to_judge(np.stack([p for p, _ in cases.values()]))
    assert dict(zip(cases, verdict.tolist())) == {name: expected for name, (_, expected) in cases.items()}
    counts = np.round(np.stack([p for p, _ in cases.values()]) * 65535).astype(np.uint16)
    np.testing.assert_array_equal(nothing_to_judge(counts, scale_factor(np.uint16)), verdict)


def test_a_zero_filled_image_has_nothing_to_judge(shipped_model):
    result = predict(np.zeros((300, 400), np.uint16))
    assert result.empty_patches == result.patch_count == 12
    assert not result.judged and np.isnan(result.predicted_level) and np.isnan(result.expected_level)
    assert not result.in_focus
    assert np.all(result.patch_certainties == 0) and result.certainties["aggregate"] == 0
    assert all(np.isnan(row["level"]) and row["empty"] for row in result.patch_rows())


def test_zero_filled_margins_are_left_out(shipped_model, in_focus_image):
    rows, cols = in_focus_image.shape
    padded = np.zeros((rows + 100, cols + 300), np.uint16)  # a registered field: zeros above and to the left
    padded[100:, 300:] = in_focus_image
    alone, with_margin = predict(in_focus_image), predict(padded)
    np.testing.assert_array_equal(with_margin.patch_origins, alone.patch_origins + [100, 300])
    np.testing.assert_allclose(with_margin.patch_probabilities, alone.patch_probabilities, atol=1e-5)
    assert with_margin.predicted_level == alone.predicted_level


def test_empty_patches_inside_the_image_drop_out(shipped_model, in_focus_image):
    holed = in_focus_image.copy()
    holed[:, 200:500] = 0  # a zero-filled stripe through the field (no margin: rows and columns stay)
    result = predict(holed)
    inside = (result.patch_origins[:, 1] >= 200) & (result.patch_origins[:, 1] + PATCH_SIZE <= 500)
    assert inside.any() and result.patch_empty[inside].all()
    assert np.all(result.patch_certainties[inside] == 0)
