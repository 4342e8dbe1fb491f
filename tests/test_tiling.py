"""Patch placement: even coverage and caller-chosen counts."""
import numpy as np
import pytest

from model.constants import PATCH_SIZE
from model.tiling import tile_grid, tile_offsets


@pytest.mark.parametrize("length", [84, 85, 167, 168, 520, 696, 2048])
def test_default_covers_all_but_less_than_one_patch(length):
    offsets = tile_offsets(length, length // PATCH_SIZE)
    assert offsets[0] >= 0 and offsets[-1] + PATCH_SIZE <= length
    assert np.all(np.diff(offsets) >= PATCH_SIZE)  # no overlap
    assert length - len(offsets) * PATCH_SIZE < PATCH_SIZE


def test_margins_split_evenly():
    offsets = tile_offsets(520, 6)  # 16 px left over, 7 gaps
    gaps = np.concatenate([[offsets[0]], np.diff(offsets) - PATCH_SIZE, [520 - offsets[-1] - PATCH_SIZE]])
    assert gaps.sum() == 16 and gaps.max() - gaps.min() <= 1


def test_grid_shape_and_order():
    origins, grid = tile_grid((520, 696))
    assert grid == (6, 8) and origins.shape == (48, 2)
    assert np.all(origins[:8, 0] == origins[0, 0])  # row-major
    assert np.all(np.diff(origins[:8, 1]) > 0)


def test_fewer_tiles_on_request():
    origins, grid = tile_grid((520, 696), n_rows=2, n_cols=3)
    assert grid == (2, 3) and len(origins) == 6
    rows = sorted(set(origins[:, 0]))
    assert rows[0] > 0 and 520 - rows[-1] - PATCH_SIZE > 0  # spread out, not packed top-left


@pytest.mark.parametrize("count", [0, 7])
def test_impossible_tile_count(count):
    with pytest.raises(ValueError, match="do not fit"):
        tile_offsets(520, count)
