"""Loading the focus SavedModel once per process and running it.

This is the only module that imports TensorFlow, and only when a model is
first loaded, so importing the package (or a CellProfiler plugin folder) stays fast.

The SavedModel contract (what the shipped model and any replacement provide):
signature ``serving_default`` with input ``input``, a float32 ``(H, W)`` image
on the model scale (raw counts / 65535) whose sides are multiples of 84, and
outputs ``probabilities`` ``(P, 11)`` and ``patches`` ``(P, 84, 84, 1)`` for its
non-overlapping 84x84 tiles in row-major order -- the layout of the original
project's export, so tools built for that model can use ours. Models exported
by this package also have a signature ``predict_patches`` (``patches``
``(B, 84, 84, 1)`` in, ``probabilities`` out), which skips packing the patches
into a mosaic and unpacking them again; other models are fed mosaics. Their
``predict_patches_bfloat16`` computes the convolutions in bfloat16: it is
used where the CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX),
where it takes about 0.6 of the float32 time, unless ``FOCUS_QUALITY_PRECISION=float32``.
"""
import contextlib
import functools
import hashlib
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from .constants import NUM_LEVELS, PATCH_SIZE

LOGGER = logging.getLogger(__name__)

#: Where the trained model ships inside the package.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "saved_model"

#: File in a model folder listing ``sha256  relative/path`` lines, checked on load.
CHECKSUM_FILE = "SHA256SUMS"

#: The signature that takes patches directly (models exported by this package).
PATCH_SIGNATURE = "predict_patches"

#: The same with bfloat16 convolutions.
BFLOAT16_PATCH_SIGNATURE = "predict_patches_bfloat16"

#: Environment variable choosing the arithmetic: ``float32`` or ``bfloat16`` (default: bfloat16 where native).
PRECISION_VARIABLE = "FOCUS_QUALITY_PRECISION"
PRECISIONS = ("float32", "bfloat16")

_LOCK = threading.Lock()
_CACHE = {}


class ModelError(RuntimeError):
    """The model is missing, damaged or does not follow the SavedModel contract."""


def load_model(path=None, precision=None):
    """The focus model at ``path`` (default: the one shipped in the package).

    Each folder is loaded once per process and shared by every caller and thread.
    ``precision`` is ``"float32"`` or ``"bfloat16"``; by default
    :data:`PRECISION_VARIABLE` decides, else :func:`default_precision`.

    Raises
    ------
    ModelError
        If the folder is missing, fails its checksums, or is not a SavedModel with
        the expected signature.
    """
    folder = Path(DEFAULT_MODEL_DIR if path is None else path).expanduser().resolve()
    precision = precision or os.environ.get(PRECISION_VARIABLE) or default_precision()
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r} (from {PRECISION_VARIABLE}?); "
                         f"use one of {', '.join(PRECISIONS)}")
    with _LOCK:
        model = _CACHE.get((folder, precision))
        if model is None:
            model = _CACHE[folder, precision] = FocusModel(folder, precision)
        return model


@functools.cache
def default_precision():
    """``bfloat16`` where the CPU computes it natively (AVX-512 BF16 or AMX, Linux), else ``float32``.

    Elsewhere bfloat16 is emulated and slower than float32. Read once per
    process: ``predict`` asks on every image, and ``/proc/cpuinfo`` grows with
    the number of cores.
    """
    try:
        cpu = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "bfloat16" if ("avx512_bf16" in cpu or "amx_bf16" in cpu) else "float32"


def limit_threads(threads):
    """Let TensorFlow use ``threads`` CPU threads per operation (call before the first model load).

    Worker processes sharing a machine each get their share of the cores instead
    of each starting one thread per core.
    """
    tf = import_tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(int(threads))
    tf.config.threading.set_inter_op_parallelism_threads(int(threads))


def import_tensorflow():
    """``import tensorflow``, keeping its start-up banners off the terminal.

    TensorFlow writes its oneDNN and CPU-feature notices straight to file
    descriptor 2 before its own logging is set up, so ``TF_CPP_MIN_LOG_LEVEL``
    does not silence them. They are captured while TensorFlow loads and passed
    to this module's logger at DEBUG level (shown with ``focus-quality -v``).
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _captured_stderr() as captured:
        import tensorflow as tf
    for line in captured():
        LOGGER.debug("tensorflow: %s", line)
    return tf


@contextlib.contextmanager
def _captured_stderr():
    """Redirect file descriptor 2 into a temporary file; yields a function returning its lines."""
    lines = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. some embedded hosts): nothing to hide
        yield lambda: lines
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(line for line in sink.read().decode(errors="replace").splitlines() if line.strip())


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

    def __init__(self, folder, precision="float32"):
        self.path = Path(folder)
        if not (self.path / "saved_model.pb").is_file():
            hint = (" The shipped model is missing: reinstall the package."
                    if self.path == DEFAULT_MODEL_DIR else "")
            raise ModelError(f"no SavedModel (saved_model.pb) in {self.path}.{hint}")
        _verify_checksums(self.path)
        tf = import_tensorflow()
        try:
            self._loaded = tf.saved_model.load(str(self.path))
            self._serve = self._loaded.signatures["serving_default"]
        except Exception as exc:
            raise ModelError(f"{self.path} is not a usable SavedModel: {exc}") from None
        signatures = self._loaded.signatures
        if precision == "bfloat16" and BFLOAT16_PATCH_SIGNATURE in signatures:
            self.precision, self._patch_fn = precision, signatures[BFLOAT16_PATCH_SIGNATURE]
        else:  # models without a bfloat16 signature run in float32 whatever was asked
            self.precision, self._patch_fn = "float32", signatures.get(PATCH_SIGNATURE)
        inputs = self._serve.structured_input_signature[1]
        outputs = self._serve.structured_outputs
        if "input" not in inputs or "probabilities" not in outputs:
            raise ModelError(
                f"{self.path}: serving_default must take `input` and return `probabilities`; "
                f"it takes {sorted(inputs)} and returns {sorted(outputs)}")
        self._tf = tf
        LOGGER.debug("loaded focus model from %s (%s)", self.path, self.precision)

    def predict_patches(self, patches):
        """Probabilities ``(B, 11)`` for patches ``(B, 84, 84)`` on the model scale, in one call."""
        patches = np.asarray(patches, dtype=np.float32)
        if self._patch_fn is not None:
            out = self._patch_fn(patches=self._tf.constant(patches[..., None]))
        else:  # the original contract: one row of patches is a mosaic whose tiles are the patches, in order
            mosaic = patches.transpose(1, 0, 2).reshape(PATCH_SIZE, -1)
            out = self._serve(input=self._tf.constant(mosaic))
        probs = out["probabilities"].numpy().astype(np.float64)
        if probs.shape != (len(patches), NUM_LEVELS):
            raise ModelError(f"{self.path} returned probabilities of shape {probs.shape} for {len(patches)} "
                             f"patches, expected ({len(patches)}, {NUM_LEVELS})")
        return probs
