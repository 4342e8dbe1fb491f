"""Training material: the thick sample, the confocal in-focus spread, the camera's brightness range, and
``check-simulator`` on the real images in samples/."""
import json
import shutil

import numpy as np
import pytest
import tifffile

from model.training import sources
from model.training.simulator import clean_signal, counts_of, thick_sample
from model.training.simulator_check import radial_spectrum, spectral_slope

from .conftest import IN_FOCUS, OUT_OF_FOCUS
from .test_training_and_evaluation import HFF, run_cli

#: The sample's name in the training pool, from which its optics (confocal) are read.
HFF_POOL_NAME = "mnfinder__test__2023-05-31_misc__HFF-revt-01_s17.tif"


@pytest.fixture(scope="module")
def hff_signal():
    return clean_signal(counts_of(tifffile.imread(HFF)))[0]


def test_kinds_from_file_names():
    assert sources.kind_of(HFF_POOL_NAME).optics == "confocal"
    assert sources.kind_of("mnfinder__training__2022-03-18_RPE1__3.tif").optics == "widefield"
    assert sources.kind_of("AS_09047_050428030001_O01f00d2.TIF").stain == "GFP (cytoplasmic)"


def test_thick_sample_slabs_add_up_to_the_source(hff_signal, rng):
    slabs, depths = thick_sample(hff_signal, "nuclear", rng)
    assert slabs.shape[0] == len(depths) > 5
    np.testing.assert_allclose(slabs.sum(axis=0), hff_signal, rtol=1e-4, atol=1e-2)


def test_thick_level_0_carries_out_of_focus_light(hff_signal):
    kind = sources.kind_of(HFF_POOL_NAME)
    thin, thick = (sources.simulate(hff_signal, kind, variant, [0.0])[0] for variant in ("thin", "thick"))
    assert thick.sum() == pytest.approx(thin.sum(), rel=0.01)
    assert spectral_slope(radial_spectrum(thick)) < spectral_slope(radial_spectrum(thin))


def test_confocal_sources_get_the_reference_in_focus_spread(hff_signal):
    """The same pixels at level 0 are softer as a confocal source than as a widefield one, and no more."""
    confocal, widefield = sources.kind_of(HFF_POOL_NAME), sources.NUCLEI_WIDEFIELD
    as_confocal = sources.simulate(hff_signal, confocal, "thin", [0.0])[0]
    as_widefield = sources.simulate(hff_signal, widefield, "thin", [0.0])[0]
    slope_confocal, slope_widefield = (spectral_slope(radial_spectrum(x)) for x in (as_confocal, as_widefield))
    assert -1.0 < slope_confocal - slope_widefield < -0.1
    one_level = spectral_slope(radial_spectrum(sources.simulate(hff_signal, widefield, "thin", [2e-6])[0]))
    assert one_level < slope_confocal


def test_cameras_span_the_papers_brightness_range(rng):
    flat = np.full((2000, 4, 4), 4000, np.float32)
    brightness = sources.random_camera(flat, rng, offset=0.0).mean(axis=(1, 2)) / 4000
    assert brightness.min() == pytest.approx(sources.GAIN_RANGE[0], rel=0.1)
    assert brightness.max() == pytest.approx(sources.GAIN_RANGE[1], rel=0.1)


def test_check_simulator_on_the_samples(tmp_path):
    confocal = tmp_path / HFF_POOL_NAME
    shutil.copy(HFF, confocal)
    run_cli("check-simulator", "--widefield", IN_FOCUS, "--confocal", confocal, "--pair", IN_FOCUS, OUT_OF_FOCUS,
            "-o", tmp_path / "check")
    numbers = json.loads((tmp_path / "check" / "simulator_check.json").read_text())
    level0 = numbers["level_0_slopes"]
    thin, thick = level0["simulated thin (confocal sources)"], level0["simulated thick (confocal sources)"]
    assert level0["real widefield"]["images"] == 1 and thin["images"] == 1
    assert thick["median"] < thin["median"]
    pair = numbers["pair_slopes"]
    assert pair["real z00 (~32 µm)"] > pair["real in focus"]  # its noise floor flattens the blurred spectrum
    assert pair["simulated 32 µm, thin"] < pair["real in focus"] - 1
    assert (tmp_path / "check" / "simulator_check.png").stat().st_size > 10000
