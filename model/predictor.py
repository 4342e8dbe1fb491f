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
where it takes about 0.6 of the float32 time. A model trained on the 8-bit grid
has ``predict_patches_int8`` instead, used where the CPU has 8-bit dot products
(AVX-512 VNNI, AVX-VNNI or AMX) and TensorFlow's oneDNN kernels are on; its
``predict_patches`` computes the same rounding in float32. ``FOCUS_QUALITY_PRECISION``
overrides the choice.

Where TensorFlow cannot be imported (the CellProfiler app), or with
``FOCUS_QUALITY_BACKEND=numpy``, the same network runs in NumPy
(:mod:`model.numpy_network`) from the weights file beside the SavedModel.
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
from .numpy_network import WEIGHTS_FILE, NumpyNetwork

LOGGER = logging.getLogger(__name__)

#: Where the trained model ships inside the package.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "saved_model"

#: File in a model folder listing ``sha256  relative/path`` lines, checked on load.
CHECKSUM_FILE = "SHA256SUMS"

#: The signature that takes patches directly (models exported by this package).
PATCH_SIGNATURE = "predict_patches"

#: The same with bfloat16 convolutions.
BFLOAT16_PATCH_SIGNATURE = "predict_patches_bfloat16"

#: The same in 8-bit integer arithmetic (models trained on the 8-bit grid).
INT8_PATCH_SIGNATURE = "predict_patches_int8"

#: Environment variable choosing the arithmetic (default: the fastest this CPU has natively).
PRECISION_VARIABLE = "FOCUS_QUALITY_PRECISION"
PRECISIONS = ("float32", "bfloat16", "int8")

#: Environment variable choosing what runs the network (default: TensorFlow where it can be imported).
BACKEND_VARIABLE = "FOCUS_QUALITY_BACKEND"
BACKENDS = ("tensorflow", "numpy")

#: Signature of each precision (a model without it runs in another: see ``FocusModel._patch_signature``).
_SIGNATURES = {"int8": INT8_PATCH_SIGNATURE, "bfloat16": BFLOAT16_PATCH_SIGNATURE, "float32": PATCH_SIGNATURE}

_REINSTALL = "reinstall the package (or the CellProfiler plugin folder)"

_LOCK = threading.Lock()
_CACHE = {}


class ModelError(RuntimeError):
    """The model is missing, damaged or does not follow the SavedModel contract."""


def load_model(path=None, precision=None, backend=None):
    """The focus model at ``path`` (default: the one shipped in the package).

    Each folder is loaded once per process and shared by every caller and thread.
    ``backend`` is ``"tensorflow"`` or ``"numpy"``; by default :data:`BACKEND_VARIABLE`
    decides, else :func:`default_backend`. For TensorFlow, ``precision`` is
    ``"float32"``, ``"bfloat16"`` or ``"int8"``; by default :data:`PRECISION_VARIABLE`
    decides, else :func:`default_precision`. A model without that precision's signature
    runs in the best one it has (``.precision``). NumPy computes the 8-bit rounding in float32.

    Raises
    ------
    ModelError
        If the folder is missing, fails its checksums, or is not a SavedModel with
        the expected signature (for NumPy: has no readable weights file); if the
        backend asked for cannot run here.
    """
    folder = Path(DEFAULT_MODEL_DIR if path is None else path).expanduser().resolve()
    backend = backend or os.environ.get(BACKEND_VARIABLE) or default_backend(folder)
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r} (from {BACKEND_VARIABLE}?); use one of {', '.join(BACKENDS)}")
    precision = "float32" if backend == "numpy" else (
        precision or os.environ.get(PRECISION_VARIABLE) or default_precision())
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r} (from {PRECISION_VARIABLE}?); "
                         f"use one of {', '.join(PRECISIONS)}")
    with _LOCK:
        model = _CACHE.get((folder, backend, precision))
        if model is None:
            kind = NumpyFocusModel if backend == "numpy" else FocusModel
            model = _CACHE[folder, backend, precision] = kind(folder, precision)
        return model


def default_backend(folder=DEFAULT_MODEL_DIR):
    """``"numpy"`` where TensorFlow cannot be imported or ``folder`` holds only NumPy weights, else ``"tensorflow"``."""
    if (Path(folder) / WEIGHTS_FILE).is_file() and not (Path(folder) / "saved_model.pb").is_file():
        return "numpy"
    try:
        import_tensorflow()
    except ImportError:
        return "numpy"
    return "tensorflow"


#: CPU flags (Linux ``/proc/cpuinfo``) of native 8-bit dot products and of native bfloat16.
_INT8_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8"}
_BFLOAT16_FLAGS = {"avx512_bf16", "amx_bf16"}


def default_precision():
    """``int8`` where the CPU has 8-bit dot products (AVX-512 VNNI, AVX-VNNI or AMX), else
    ``bfloat16`` where it computes bfloat16 natively (AVX-512 BF16 or AMX), else ``float32``.

    Elsewhere these are emulated and slower than float32.
    """
    flags = _cpu_flags()
    if flags & _INT8_FLAGS:
        return "int8"
    return "bfloat16" if flags & _BFLOAT16_FLAGS else "float32"


@functools.lru_cache(maxsize=None)  # not functools.cache: the CellProfiler app's Python is 3.8
def _cpu_flags():
    """Read once per process: ``predict`` asks on every image, and ``/proc/cpuinfo`` grows with the cores."""
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


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
    if sys.modules.get("tensorflow") is not None:
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


def write_checksums(folder):
    """List every file of ``folder`` in its ``SHA256SUMS``, which :func:`load_model` checks."""
    folder = Path(folder)
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}"
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != CHECKSUM_FILE]
    (folder / CHECKSUM_FILE).write_text("\n".join(lines) + "\n")


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
            raise ModelError(f"model file {target} is missing; {_REINSTALL}")
        if hashlib.sha256(target.read_bytes()).hexdigest() != expected:
            raise ModelError(f"model file {target} is damaged (checksum mismatch); {_REINSTALL}")


class NumpyFocusModel:
    """The network of a model folder run by NumPy (:mod:`model.numpy_network`); use :func:`load_model`."""

    backend = "numpy"

    def __init__(self, folder, precision="float32"):
        self.path, self.precision = Path(folder), precision
        weights = self.path / WEIGHTS_FILE
        if not weights.is_file():
            fix = _REINSTALL if self.path == DEFAULT_MODEL_DIR else "write them with `focus-quality export-numpy-weights`"
            raise ModelError(f"no NumPy weights ({WEIGHTS_FILE}) in {self.path}; {fix}")
        _verify_checksums(self.path)
        try:
            self._network = NumpyNetwork(weights)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"{weights} is not a usable weights file ({exc}); {_REINSTALL}") from None
        self.predict_patches = self._network.predict_patches
        LOGGER.debug("loaded focus model from %s (NumPy)", weights)


class FocusModel:
    """A loaded focus SavedModel; use :func:`load_model` rather than this directly."""

    backend = "tensorflow"

    def __init__(self, folder, precision="float32"):
        self.path = Path(folder)
        if not (self.path / "saved_model.pb").is_file():
            hint = (" The shipped model is missing: reinstall the package."
                    if self.path == DEFAULT_MODEL_DIR else "")
            raise ModelError(f"no SavedModel (saved_model.pb) in {self.path}.{hint}")
        _verify_checksums(self.path)
        try:
            tf = import_tensorflow()
        except ImportError as exc:
            raise ModelError(f"the TensorFlow backend was asked for, but TensorFlow cannot be imported here ({exc}); "
                             f"install tensorflow-cpu, or unset {BACKEND_VARIABLE} to run the network in NumPy") from None
        try:
            self._loaded = tf.saved_model.load(str(self.path))
            self._serve = self._loaded.signatures["serving_default"]
        except Exception as exc:
            raise ModelError(f"{self.path} is not a usable SavedModel: {exc}") from None
        self._tf = tf
        self.precision, self._patch_fn = self._patch_signature(precision)
        inputs = self._serve.structured_input_signature[1]
        outputs = self._serve.structured_outputs
        if "input" not in inputs or "probabilities" not in outputs:
            raise ModelError(
                f"{self.path}: serving_default must take `input` and return `probabilities`; "
                f"it takes {sorted(inputs)} and returns {sorted(outputs)}")
        LOGGER.debug("loaded focus model from %s (%s)", self.path, self.precision)

    def _patch_signature(self, precision):
        """``(precision, signature)``: the one asked for if the model has it and it runs here, else
        bfloat16 (only where it is native), else float32.

        An int8 signature needs TensorFlow's oneDNN kernels, which ``TF_ENABLE_ONEDNN_OPTS=0``
        turns off, so it is tried on one patch first.
        """
        signatures = self._loaded.signatures
        native = ["bfloat16"] if precision == "int8" and _cpu_flags() & _BFLOAT16_FLAGS else []
        for name in dict.fromkeys([precision, *native, "float32"]):
            function = signatures.get(_SIGNATURES[name])
            if function is None or (name == "int8" and not self._runs(function)):
                continue
            return name, function
        return "float32", None  # the original contract only: fed mosaics

    def _runs(self, function):
        try:
            function(patches=self._tf.zeros([1, PATCH_SIZE, PATCH_SIZE, 1]))
        except self._tf.errors.OpError as exc:
            LOGGER.debug("int8 signature of %s does not run here (%s); using a float signature",
                         self.path, str(exc).splitlines()[0])
            return False
        return True

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
