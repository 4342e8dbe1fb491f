"""Shared fixtures: real images from samples/, the shipped model, and a small model built on the fly."""
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
IN_FOCUS = SAMPLES / "bbbc006_a01_s1_w1_infocus.tif"
OUT_OF_FOCUS = SAMPLES / "bbbc006_a01_s1_w1_z00.tif"


@pytest.fixture(scope="session")
def in_focus_image():
    return tifffile.imread(IN_FOCUS)


@pytest.fixture(scope="session")
def out_of_focus_image():
    return tifffile.imread(OUT_OF_FOCUS)


def focal_stack(image, levels=(6, 0, 3), seed=0):
    """Planes of a real field defocused to ``levels``, each with camera noise, as a uint16 (Z, Y, X) stack.

    The noise matters: blurring a real image also smooths its own noise, and a
    noise-free plane is not what a microscope records.
    """
    from model.training.simulator import apply_sensor, clean_signal, counts_of, defocus

    signal, black = clean_signal(counts_of(image))
    rng = np.random.default_rng(seed)
    return np.stack([apply_sensor(defocus(signal, level), rng, offset=black, read_noise=3).astype(np.uint16)
                     for level in levels])


@pytest.fixture(scope="session")
def shipped_model():
    from model import load_model

    return load_model()


@pytest.fixture(scope="session")
def untrained_model_dir(tmp_path_factory):
    """Any SavedModel that follows the serving contract must work: an untrained compact net."""
    import keras

    from model.training.architectures import build
    from model.training.export import export_saved_model

    keras.utils.set_random_seed(1)
    return export_saved_model(build("compact"), tmp_path_factory.mktemp("models") / "untrained")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def require_host(module_name, what):
    """Import a host application's package, or skip saying why.

    CI sets FOCUS_QUALITY_REQUIRE_HOSTS=1, turning the skip into a failure so a
    missing install step cannot hide behind a green run.
    """
    try:
        return __import__(module_name)
    except ImportError as exc:
        message = f"{what} is not installed here ({exc}); `make test` installs it"
        if os.environ.get("FOCUS_QUALITY_REQUIRE_HOSTS") == "1":
            pytest.fail(message)
        pytest.skip(message, allow_module_level=True)


@pytest.fixture(scope="session")
def imagej():
    """ImageJ1, headless, in this process (Java starts once per process)."""
    from fiji_bridge import ImageJUnavailable, start_imagej

    try:
        return start_imagej()
    except ImageJUnavailable as exc:
        if os.environ.get("FOCUS_QUALITY_REQUIRE_HOSTS") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
