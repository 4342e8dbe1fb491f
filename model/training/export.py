"""Writing a patch classifier as a SavedModel that follows the serving contract.

See :mod:`model.predictor` for the contract: ``serving_default`` takes a
float32 ``(H, W)`` image and returns ``probabilities`` and ``patches`` for its
84x84 tiles, as the original project's export did; ``predict_patches`` takes
the patches themselves, which is what :func:`model.predict` uses, and
``predict_patches_bfloat16`` the same with the convolutions computed in
bfloat16 (what the predictor picks on CPUs with native bfloat16 arithmetic).
A network on the 8-bit grid (:func:`model.training.architectures.quantized`)
gets ``predict_patches_int8`` instead: the same function in 8-bit integer
arithmetic, through oneDNN's int8 convolutions (AVX-512 VNNI); its float32
signature computes the rounding in float32, for machines without them.
"""
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ..constants import PATCH_SIZE
from ..numpy_network import FORMAT_VERSION, WEIGHTS_FILE, NumpyNetwork
from ..predictor import BFLOAT16_PATCH_SIGNATURE, INT8_PATCH_SIGNATURE, PATCH_SIGNATURE, write_checksums
from .architectures import Int8Conv2D, PatchStandardization, Quantize8

_PATCHES = tf.TensorSpec([None, PATCH_SIZE, PATCH_SIZE, 1], tf.float32, name="patches")


def bfloat16_twin(classifier):
    """``classifier`` with the same weights, its convolutions computing in bfloat16.

    Standardisation, pooling and the logits stay in float32: the per-patch
    mean and variance need more than bfloat16's 8 significant bits.
    """
    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.Conv2D):
            config["dtype"] = "mixed_bfloat16"
        return layer.__class__.from_config(config)

    twin = keras.models.clone_model(classifier, clone_function=clone)
    twin.set_weights(classifier.get_weights())
    return twin


def int8_logits(classifier):
    """``patches -> logits`` for a network on the 8-bit grid, in 8-bit integer arithmetic.

    Each convolution is one fused oneDNN kernel (``QuantizedConv2DWithBiasAndReluAndRequantize``):
    uint8 activations (int8 for the signed patch) times per-channel int8 kernels, int32
    sums, the float32 bias, ReLU, and rounding onto the next layer's 8-bit grid. The
    kernels are graph constants, as the kernel requires.
    """
    stack = [l for l in classifier.layers if isinstance(l, (Int8Conv2D, Quantize8))]
    convs = list(zip(stack[1::2], stack[2::2]))
    if not (stack and isinstance(stack[0], Quantize8) and stack[0].signed and len(stack) % 2 == 1
            and all(isinstance(c, Int8Conv2D) and c.get_config()["activation"] == "relu"
                    and isinstance(q, Quantize8) for c, q in convs)):
        raise ValueError(f"{classifier.name} is not a network on the 8-bit grid (see architectures.quantized)")
    standardise = next(l for l in classifier.layers if isinstance(l, PatchStandardization))
    pooled = [next(l for l in classifier.layers if isinstance(l, kind))  # in the order the classifier joins them
              for kind in (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)]
    logits = classifier.get_layer("logits")
    first = stack[0].limit
    layers = [(*conv.quantized_kernel(), conv.bias.numpy(), conv.strides[0], out.limit) for conv, out in convs]

    def run(patches):
        q, _, _ = tf.raw_ops.QuantizeV2(input=standardise(patches), min_range=-first, max_range=first, T=tf.qint8,
                                        mode="SCALED")
        limit_in = first
        for i, (kernel, kernel_limit, bias, stride, limit_out) in enumerate(layers):
            q, _, _ = tf.raw_ops.QuantizedConv2DWithBiasAndReluAndRequantize(
                input=q, filter=tf.constant(kernel, tf.qint8), bias=tf.constant(bias),
                min_input=-limit_in if i == 0 else 0.0, max_input=limit_in,
                min_filter=tf.constant(-kernel_limit), max_filter=tf.constant(kernel_limit),
                min_freezed_output=0.0, max_freezed_output=limit_out,
                strides=[1, stride, stride, 1], padding="SAME", out_type=tf.quint8)
            limit_in = limit_out
        x = tf.quantization.dequantize(q, 0.0, limit_in, mode="SCALED")
        return logits(tf.concat([pool(x) for pool in pooled], axis=1))

    return run


class _Serving(tf.Module):
    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier
        if any(isinstance(layer, Quantize8) for layer in classifier.layers):
            self.fast_signature, fast_logits = INT8_PATCH_SIGNATURE, int8_logits(classifier)
        else:
            self.classifier_bfloat16 = bfloat16_twin(classifier)
            self.fast_signature = BFLOAT16_PATCH_SIGNATURE

            def fast_logits(patches):
                return tf.cast(self.classifier_bfloat16(patches, training=False), tf.float32)

        def predict_fast(patches):
            return {"probabilities": tf.nn.softmax(fast_logits(patches))}

        self.predict_fast = tf.function(predict_fast, input_signature=[_PATCHES], autograph=False)

    # No autograph: these have no Python control flow on tensors, and converting them once
    # ended a 6000-step training run in a RecursionError at export.
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="input")], autograph=False)
    def serve(self, input):  # noqa: A002 - the contract's input name
        rows = tf.shape(input)[0] // PATCH_SIZE
        cols = tf.shape(input)[1] // PATCH_SIZE
        image = input[:rows * PATCH_SIZE, :cols * PATCH_SIZE]
        patches = tf.reshape(image, [rows, PATCH_SIZE, cols, PATCH_SIZE])
        patches = tf.reshape(tf.transpose(patches, [0, 2, 1, 3]), [-1, PATCH_SIZE, PATCH_SIZE, 1])
        return {"probabilities": self.predict(patches)["probabilities"], "patches": patches}

    @tf.function(input_signature=[_PATCHES], autograph=False)
    def predict(self, patches):
        return {"probabilities": tf.nn.softmax(self.classifier(patches, training=False))}


def export_saved_model(classifier, folder):
    """Save ``classifier`` (patches -> logits) under the serving contract, with checksums."""
    folder = Path(folder)
    module = _Serving(classifier)
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve,
                                                         PATCH_SIGNATURE: module.predict,
                                                         module.fast_signature: module.predict_fast})
    if module.fast_signature == INT8_PATCH_SIGNATURE:
        write_numpy_weights(folder)
    write_checksums(folder)
    return folder


def write_numpy_weights(folder):
    """Write the weights of the 8-bit-grid SavedModel in ``folder`` for :mod:`model.numpy_network`.

    They are read off the float32 ``predict_patches`` graph: its variables, the
    limits of its 8-bit grids and the standardisation floor (graph constants), the
    convolution strides; the kernels are stored already rounded, as that graph
    rounds them. Both must then give the same probabilities (within 0.02) on
    real-looking and on random patches, or nothing is written. The checksums are not updated: see
    :func:`write_checksums`.
    """
    folder = Path(folder)
    loaded = tf.saved_model.load(str(folder))  # held: its variables die with it
    function = loaded.signatures[PATCH_SIGNATURE]
    nodes = [n for f in function.graph.as_graph_def().library.function for n in f.node_def]
    constants = {n.name: tf.make_ndarray(n.attr["value"].tensor) for n in nodes if n.op == "Const"}

    def operand(node, i):
        return float(constants[node.input[i].split(":")[0]])

    grids = [(operand(n, 1), operand(n, 2), n.attr["narrow_range"].b)
             for n in nodes if n.op == "FakeQuantWithMinMaxVars"]
    strides = [list(n.attr["strides"].list.i) for n in nodes if n.op == "Conv2D"]
    floors = [operand(n, 1) for n in nodes if n.op == "Maximum" and "patch_standardization" in n.name]
    variables = [v.numpy() for v in function.variables]
    kernels, biases = variables[0:-2:2], variables[1:-2:2]
    if not (len(grids) == len(kernels) + 1 == len(strides) + 1 and len(floors) == 1 and grids[0][2]
            and grids[0][0] == -grids[0][1] and all(low == 0 and not narrow for low, _, narrow in grids[1:])
            and all(s[1] == s[2] for s in strides)):
        raise ValueError(f"{folder} is not a standardised stack of convolutions on the 8-bit grid")
    weights = {"format_version": FORMAT_VERSION, "floor": floors[0], "input_limit": grids[0][1],
               "conv_count": len(kernels), "dense_kernel": variables[-2], "dense_bias": variables[-1]}
    for i, (kernel, bias, stride, (_, limit, _)) in enumerate(zip(kernels, biases, strides, grids[1:])):
        limits = np.maximum(np.abs(kernel).max(axis=(0, 1, 2)), 1e-12)
        weights.update({f"conv{i}_kernel": tf.quantization.fake_quant_with_min_max_vars_per_channel(
                            kernel, -limits, limits, num_bits=8, narrow_range=True).numpy(),
                        f"conv{i}_bias": bias, f"conv{i}_stride": stride[1], f"conv{i}_limit": limit})
    target = folder / WEIGHTS_FILE
    np.savez(target, **weights)
    probe = np.concatenate([tf.random.stateless_uniform([8, PATCH_SIZE, PATCH_SIZE], seed=[0, 0]).numpy(),
                            _textured_patches(8)])
    expected = function(patches=tf.constant(probe[..., None]))["probabilities"].numpy()
    # Not equal: NumPy sums in another order, so a value next to a rounding step can land on its other side.
    difference = np.abs(NumpyNetwork(target).predict_patches(probe) - expected).max()
    if difference > 0.02:
        target.unlink()
        raise ValueError(f"the NumPy network differs from {folder} by {difference:.2g} in probability")
    return target


def _textured_patches(count):
    """Smooth random structure at several scales: the probe a flat random patch cannot be."""
    rng = np.random.default_rng(0)
    noise = rng.random((count, PATCH_SIZE, PATCH_SIZE)).astype(np.float32)
    spectrum = np.fft.rfft2(noise) / (1 + np.hypot(*np.meshgrid(np.fft.fftfreq(PATCH_SIZE),
                                                                 np.fft.rfftfreq(PATCH_SIZE), indexing="ij")) * 40)
    return (np.fft.irfft2(spectrum, s=(PATCH_SIZE, PATCH_SIZE)) * 0.05 + 0.02).astype(np.float32)


def load_weights(classifier, folder):
    """Give ``classifier`` the weights of the SavedModel in ``folder`` (exported by this package from the
    same architecture), and check that both now compute the same probabilities."""
    loaded = tf.saved_model.load(str(folder))  # held: its variables die with it
    function = loaded.signatures[PATCH_SIGNATURE]
    try:
        classifier.set_weights([v.numpy() for v in function.variables])
    except ValueError as exc:
        raise ValueError(f"{folder} does not hold a {classifier.name} network: {exc}") from None
    probe = tf.random.stateless_uniform([4, PATCH_SIZE, PATCH_SIZE, 1], seed=[0, 0])
    if not np.allclose(tf.nn.softmax(classifier(probe)), function(patches=probe)["probabilities"], atol=1e-4):
        raise ValueError(f"{folder} does not hold a {classifier.name} network: its outputs differ")
    return classifier
