"""Loading the focus SavedModel once per process and running it.

This is the only module that imports TensorFlow, and only when a model is
first loaded, so importing the package (or a CellProfiler plugin folder) stays fast.

The SavedModel contract (what the shipped model and any replacement provide):
signature ``serving_default`` with input ``input``, a float32 ``(H, W)`` image
on the model scale (raw counts / 65535) whose sides are multiples of 84, and
outputs ``probabilities`` ``(P, 11)`` and ``patches`` ``(P, 84, 84, 1)`` for its
non-overlapping 84x84 tiles in row-major order -- the layout of the original
project's export, so tools built for that model can use ours.
"""
import hashlib
import logging
import os
import threading
from pathlib import Path

import numpy as np

from .constants import NUM_LEVELS

LOGGER = logging.getLogger(__name__)

#: Where the trained model ships inside the package.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "saved_model"

#: File in a model folder listing ``sha256  relative/path`` lines, checked on load.
CHECKSUM_FILE = "SHA256SUMS"

_LOCK = threading.Lock()
_CACHE = {}


class ModelError(RuntimeError):
    """The model is missing, damaged or does not follow the SavedModel contract."""


def load_model(path=None):
    """The focus model at ``path`` (default: the one shipped in the package).

    Each folder is loaded once per process and shared by every caller and thread.

    Raises
    ------
    ModelError
        If the folder is missing, fails its checksums, or is not a SavedModel with
        the expected signature.
    """
    folder = Path(DEFAULT_MODEL_DIR if path is None else path).expanduser().resolve()
    with _LOCK:
        model = _CACHE.get(folder)
        if model is None:
            model = _CACHE[folder] = FocusModel(folder)
        return model


def limit_threads(threads):
    """Let TensorFlow use ``threads`` CPU threads per operation (call before the first model load).

    Worker processes sharing a machine each get their share of the cores instead
    of each starting one thread per core.
    """
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(int(threads))
    tf.config.threading.set_inter_op_parallelism_threads(int(threads))


def _verify_checksums(folder):
    listing = folder / CHECKSUM_FILE
    if not listing.is_file():
        return
    for line in listing.read_text().splitlines():
        if not line.strip():
            continue
        expected, name = line.split(maxsplit=1)
        target = folder / name.strip()
        if not target.is_file():
            raise ModelError(f"model file {target} is missing; reinstall the package")
        if hashlib.sha256(target.read_bytes()).hexdigest() != expected:
            raise ModelError(f"model file {target} is damaged (checksum mismatch); reinstall the package")


class FocusModel:
    """A loaded focus SavedModel; use :func:`load_model` rather than this directly."""

    def __init__(self, folder):
        self.path = Path(folder)
        if not (self.path / "saved_model.pb").is_file():
            hint = (" The shipped model is missing: reinstall the package."
                    if self.path == DEFAULT_MODEL_DIR else "")
            raise ModelError(f"no SavedModel (saved_model.pb) in {self.path}.{hint}")
        _verify_checksums(self.path)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        try:
            self._loaded = tf.saved_model.load(str(self.path))
            self._serve = self._loaded.signatures["serving_default"]
        except Exception as exc:
            raise ModelError(f"{self.path} is not a usable SavedModel: {exc}") from None
        inputs = self._serve.structured_input_signature[1]
        outputs = self._serve.structured_outputs
        if "input" not in inputs or "probabilities" not in outputs:
            raise ModelError(
                f"{self.path}: serving_default must take `input` and return `probabilities`; "
                f"it takes {sorted(inputs)} and returns {sorted(outputs)}")
        self._tf = tf
        LOGGER.info("loaded focus model from %s", self.path)

    def predict_mosaic(self, mosaic):
        """Per-patch probabilities ``(P, 11)`` for a mosaic of 84x84 patches (one call)."""
        out = self._serve(input=self._tf.constant(mosaic, dtype=self._tf.float32))
        probs = out["probabilities"].numpy().astype(np.float64)
        if probs.ndim != 2 or probs.shape[1] != NUM_LEVELS:
            raise ModelError(f"{self.path} returned probabilities of shape {probs.shape}, "
                             f"expected (patches, {NUM_LEVELS})")
        return probs
