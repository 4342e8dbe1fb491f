"""Patch classifiers: ``(N, 84, 84, 1)`` float32 patches on the model scale -> ``(N, 11)`` logits."""
import keras
import numpy as np
import tensorflow as tf
from keras import layers

from ..constants import NUM_LEVELS, PATCH_SIZE


@keras.saving.register_keras_serializable(package="focus_quality")
class PatchStandardization(layers.Layer):
    """Zero mean, unit variance per patch: makes the net blind to gain and offset.

    ``floor`` keeps near-constant patches (flat background, saturation) from
    blowing their noise up to unit variance; it is about 6 counts on the 16-bit scale.
    """

    def __init__(self, floor=1e-4, **kwargs):
        super().__init__(**kwargs)
        self.floor = floor

    def call(self, x):
        mean = keras.ops.mean(x, axis=(1, 2, 3), keepdims=True)
        std = keras.ops.std(x, axis=(1, 2, 3), keepdims=True)
        return (x - mean) / keras.ops.maximum(std, self.floor)

    def get_config(self):
        return {**super().get_config(), "floor": self.floor}


def lean():
    """The network of v2 to v2.4: :func:`compact` without its second 42x42 convolution; 0.13 M weights.

    That layer is a fifth of compact's multiply-adds; the layers after it see
    the same fields of view. Exported with a bfloat16 twin
    (:func:`model.training.export.export_saved_model`), it runs in under half
    the time of compact in float32 on CPUs with AVX-512 BF16. It learns the
    sharp end (levels 0-2) less well than compact, even distilled from it.
    """
    def body(x):
        for filters, stride in [(16, 2), (32, 2), (32, 1), (64, 2), (64, 1), (96, 2)]:
            x = _conv(filters, stride, x)
        return x

    return _standardised_pooled("lean", body)


def compact():
    """The v1 network, and v2.5's on the 8-bit grid: 7 strided 3x3 convolutions, global pooling, 0.13 M weights.

    Per-patch standardisation lets it learn within minutes on a CPU (the paper's
    raw-scale input at lr 3e-5 needs ~1 M steps); global avg+max pooling replaces
    the paper's 28 M-weight dense layer, which is what makes it ~5x faster.
    """
    def body(x):
        for filters, stride in [(16, 2), (16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (96, 2)]:
            x = _conv(filters, stride, x)
        return x

    return _standardised_pooled("compact", body)


def _conv(filters, stride, x):
    return layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu",
                         kernel_initializer="he_normal")(x)


def _standardised_pooled(name, body):
    """Patches -> standardisation -> ``body`` -> global average + max pooling -> 11 logits."""
    inputs = keras.Input((PATCH_SIZE, PATCH_SIZE, 1), name="patches")
    x = body(PatchStandardization()(inputs))
    x = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    return keras.Model(inputs, layers.Dense(NUM_LEVELS, name="logits")(x), name=name)


@keras.saving.register_keras_serializable(package="focus_quality")
class Quantize8(layers.Layer):
    """Rounds activations to the 8-bit grid of the int8 network: 255 steps over ``[0, limit]``
    (after a ReLU), or 254 over ``[-limit, limit]`` with ``signed`` (the standardised patch).

    Values beyond the limit are clipped, as the int8 network clips them. Gradients
    pass straight through inside the limits, so a network can learn around the rounding.
    """

    def __init__(self, limit, signed=False, **kwargs):
        super().__init__(**kwargs)
        self.limit, self.signed = float(limit), bool(signed)

    def call(self, x):
        low = -self.limit if self.signed else 0.0
        return tf.quantization.fake_quant_with_min_max_vars(x, low, self.limit, num_bits=8,
                                                            narrow_range=self.signed)

    def get_config(self):
        return {**super().get_config(), "limit": self.limit, "signed": self.signed}


@keras.saving.register_keras_serializable(package="focus_quality")
class Int8Conv2D(layers.Conv2D):
    """A convolution whose kernel is rounded to 8 bits per output channel (127 steps each side of 0)."""

    def quantized_kernel(self):
        """``(int8 kernel, per-channel limit)``: the kernel is ``int8 * limit / 127``."""
        kernel, limit = (t.numpy() for t in self._rounded_kernel())
        steps = np.rint(kernel / limit * 127).astype(np.int8)
        limit[~steps.any(axis=(0, 1, 2))] = 1.0  # an all-zero channel fits any limit; 1 keeps oneDNN's scales finite
        return steps, limit

    def call(self, inputs):
        kernel, _ = self._rounded_kernel()
        x = tf.nn.conv2d(inputs, tf.cast(kernel, inputs.dtype), self.strides, self.padding.upper())
        return self.activation(tf.nn.bias_add(x, tf.cast(self.bias, x.dtype)))

    def _rounded_kernel(self):
        """The kernel on its 8-bit grid, and the per-channel limit (its largest |weight|) the grid spans."""
        kernel = tf.cast(self.kernel, tf.float32)
        limit = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(kernel), axis=[0, 1, 2]), 1e-12))
        return tf.quantization.fake_quant_with_min_max_vars_per_channel(kernel, -limit, limit, num_bits=8,
                                                                        narrow_range=True), limit


def activation_limits(classifier, patches, percentile=99.99):
    """The 8-bit ranges of a conv stack: the ``percentile`` of the standardised patches' |value| and of
    each convolution's output, on ``patches`` (training patches: a few thousand are plenty).

    A percentile, not the maximum: a handful of outliers would otherwise stretch the
    grid and coarsen it for every other value.
    """
    standardised, convs = _conv_stack(classifier)
    probe = keras.Model(classifier.inputs, [standardised.output] + [c.output for c in convs])
    outputs = [np.abs(o) for o in probe.predict(patches, batch_size=256, verbose=0)]
    return [float(np.percentile(o, percentile)) for o in outputs]


def quantized(classifier, limits):
    """``classifier`` (a standardised stack of ReLU convolutions, as :func:`lean`) on the 8-bit grid.

    Its patch, every convolution's output (``limits`` from :func:`activation_limits`)
    and its kernels are rounded as the int8 network rounds them, so that training it
    teaches the weights to live with the rounding; the int8 export
    (:func:`model.training.export.int8_logits`) then computes the same function with
    8-bit integer arithmetic (AVX-512 VNNI).
    """
    _, convs = _conv_stack(classifier)
    if len(limits) != len(convs) + 1:
        raise ValueError(f"{len(convs)} convolutions need {len(convs) + 1} limits, got {len(limits)}")

    def body(x):
        x = Quantize8(limits[0], signed=True)(x)
        for conv, limit in zip(convs, limits[1:]):
            config = {k: v for k, v in conv.get_config().items() if k not in ("name", "dtype")}
            x = Quantize8(limit)(Int8Conv2D(**config)(x))
        return x

    twin = _standardised_pooled(f"{classifier.name}_int8", body)
    twin.set_weights(classifier.get_weights())
    return twin


def _conv_stack(classifier):
    """``(standardisation layer, convolutions)`` of a network built by :func:`_standardised_pooled`."""
    allowed = (layers.InputLayer, PatchStandardization, layers.Conv2D, layers.GlobalAveragePooling2D,
               layers.GlobalMaxPooling2D, layers.Concatenate, layers.Dense)
    if not all(isinstance(layer, allowed) for layer in classifier.layers):
        raise ValueError(f"only standardised stacks of convolutions (lean, compact) go on the 8-bit grid, "
                         f"not {classifier.name}")
    standardised = [l for l in classifier.layers if isinstance(l, PatchStandardization)]
    return standardised[0], [l for l in classifier.layers if isinstance(l, layers.Conv2D)]


def paper():
    """The network of Yang et al. 2018 (Fig. 2a), on the raw model scale as published."""
    inputs = keras.Input((PATCH_SIZE, PATCH_SIZE, 1), name="patches")
    x = layers.Conv2D(32, 5, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 5, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1024, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(NUM_LEVELS, name="logits")(x)
    return keras.Model(inputs, outputs, name="paper")


ARCHITECTURES = {"lean": lean, "compact": compact, "paper": paper}


def build(name):
    """A fresh, untrained classifier by name (see ``ARCHITECTURES``)."""
    try:
        return ARCHITECTURES[name]()
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; available: {', '.join(ARCHITECTURES)}") from None
