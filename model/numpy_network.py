"""The shipped network run by NumPy alone, for hosts without TensorFlow (the CellProfiler app).

It computes what the SavedModel's ``predict_patches`` signature computes in
float32: per-patch standardisation, the patch rounded onto its signed 8-bit
grid, then seven 3x3 ReLU convolutions (stride 2 or 1, TensorFlow's ``SAME``
padding) whose kernels are already on their per-channel 8-bit grid and whose
outputs are rounded onto 255 steps, global average and max pooling, the
logits and a softmax. The weights are the SavedModel's, written once by
``focus-quality export-numpy-weights`` (which checks that both give the same
probabilities) into :data:`WEIGHTS_FILE` beside it, and covered by its
``SHA256SUMS``.

Convolutions are one matrix product each over the patches' 3x3 neighbourhoods
(im2col), for :data:`CHUNK` patches at a time: few enough that a layer's
neighbourhoods stay in the CPU's cache (batches of 64 take about 1.3x as long,
of 576 about ten times as long).
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .constants import NUM_LEVELS

#: The weights file, in the model folder.
WEIGHTS_FILE = "numpy_weights.npz"

#: Patches per forward pass.
CHUNK = 8

#: Weights file format; bumped when the layout of :data:`WEIGHTS_FILE` changes.
FORMAT_VERSION = 1


class NumpyNetwork:
    """The network stored in a :data:`WEIGHTS_FILE`; ``predict_patches`` as :class:`model.predictor.FocusModel`.

    Activations are kept as their 8-bit grid's step numbers (small integers held in
    float32), and each grid's step size is folded into the next layer's kernel and
    bias: a layer is then a matrix product, one addition, one clip and one floor.

    Raises ``ValueError`` (or ``OSError``) if the file cannot be read or is not such a network.
    """

    def __init__(self, path):
        with np.load(path, allow_pickle=False) as stored:
            weights = {name: stored[name] for name in stored.files}
        if int(weights.get("format_version", -1)) != FORMAT_VERSION:
            raise ValueError(f"{path} is not a weights file of format {FORMAT_VERSION}")
        self.floor = np.float32(weights["floor"])
        # The standardised patch's grid: 254 steps over [-limit, limit], as step numbers -127 ... 127.
        step = float(weights["input_limit"]) / 127
        self.input_scale = np.float32(1 / step)
        self.layers = []
        for i in range(int(weights["conv_count"])):
            kernel = weights[f"conv{i}_kernel"].astype(np.float64)
            out_step = float(weights[f"conv{i}_limit"]) / 255
            # ReLU output on 255 steps over [0, limit]: floor(clip(value / out_step + 0.5, 0.5, 255.5)).
            self.layers.append(((kernel * (step / out_step)).reshape(-1, kernel.shape[-1]).astype(np.float32),
                                (weights[f"conv{i}_bias"] / out_step + 0.5).astype(np.float32),
                                int(weights[f"conv{i}_stride"])))
            step = out_step
        self.dense_kernel = (weights["dense_kernel"] * step).astype(np.float32)
        self.dense_bias = weights["dense_bias"].astype(np.float32)
        if self.dense_kernel.shape != (2 * self.layers[-1][0].shape[1], NUM_LEVELS):
            raise ValueError(f"{path}: the logits layer does not fit the convolutions")

    def predict_patches(self, patches):
        """Probabilities ``(B, 11)`` for patches ``(B, 84, 84)`` on the model scale."""
        patches = np.asarray(patches, dtype=np.float32)
        out = np.empty((len(patches), NUM_LEVELS))
        for start in range(0, len(patches), CHUNK):
            out[start:start + CHUNK] = self._forward(patches[start:start + CHUNK])
        return out

    def _forward(self, patches):
        x = _standardised(patches, self.floor)[..., None]
        x *= self.input_scale
        _round_onto_steps(x, -127, 127)
        for kernel, bias, stride in self.layers:
            x = _conv3x3(x, kernel, stride)
            x += bias
            np.clip(x, np.float32(0.5), np.float32(255.5), out=x)
            np.floor(x, out=x)
        pooled = np.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))], axis=1)
        logits = (pooled @ self.dense_kernel + self.dense_bias).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


def _standardised(patches, floor):
    """Zero mean, unit variance per patch; the spread is at least ``floor`` (as ``PatchStandardization``)."""
    mean = patches.mean(axis=(1, 2), keepdims=True, dtype=np.float32)
    centred = patches - mean
    std = np.sqrt(np.square(centred).mean(axis=(1, 2), keepdims=True, dtype=np.float32))
    return centred / np.maximum(std, floor)


def _round_onto_steps(x, low, high):
    """``x`` (in step units) clipped to ``[low, high]`` and rounded half up, in place, as TensorFlow's fake quantisation."""
    np.clip(x, np.float32(low), np.float32(high), out=x)
    x += np.float32(0.5)
    np.floor(x, out=x)


def _conv3x3(x, kernel, stride):
    """``x`` ``(B, H, W, C)`` convolved with ``kernel`` ``(9C, F)`` (HWIO flattened), TensorFlow ``SAME`` padding."""
    batch, height, width, channels = x.shape
    out_h, out_w = -(-height // stride), -(-width // stride)
    pad_h = max((out_h - 1) * stride + 3 - height, 0)
    pad_w = max((out_w - 1) * stride + 3 - width, 0)
    padded = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    windows = sliding_window_view(padded, (3, 3), axis=(1, 2))[:, ::stride, ::stride]  # (B, out_h, out_w, C, 3, 3)
    columns = np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3)).reshape(-1, 9 * channels)
    return (columns @ kernel).reshape(batch, out_h, out_w, -1)
