"""Training a patch classifier on synthetically defocused crops (``focus-quality train``)."""
import logging
import queue
import threading
import time

import numpy as np

from ..constants import NUM_LEVELS
from .sources import HELD_OUT_SOURCES

LOGGER = logging.getLogger(__name__)

#: Training patches that set the 8-bit ranges of a quantised network.
CALIBRATION_PATCHES = 2048


def ranked_probability_score(probabilities, levels):
    """Mean RPS: squared distance between predicted and true cumulative distributions.

    For a one-hot prediction it equals the absolute level error (Murphy 1971), so
    near misses cost less than far ones, unlike cross-entropy.
    """
    import tensorflow as tf

    return distribution_distance(probabilities, tf.one_hot(levels, NUM_LEVELS, dtype=probabilities.dtype))


def distribution_distance(probabilities, targets):
    """The RPS between two sets of distributions over the levels (targets may be soft: a teacher's)."""
    import tensorflow as tf

    diff = tf.cumsum(probabilities, axis=-1) - tf.cumsum(targets, axis=-1)
    return tf.reduce_mean(tf.reduce_sum(diff ** 2, axis=-1))


def _batches(sources, batch_size, seed, stop):
    """Batches from a background thread, so NumPy sampling overlaps TensorFlow compute."""
    from .sources import sample_patches

    out = queue.Queue(maxsize=8)

    def produce():
        rng = np.random.default_rng(seed)
        while not stop.is_set():
            out.put(sample_patches(sources, batch_size, rng))

    threading.Thread(target=produce, daemon=True).start()
    while True:
        yield out.get()


def train(inputs, output, *, architecture="compact", steps=30000, batch_size=64, learning_rate=1e-3, seed=0,
          held_out=HELD_OUT_SOURCES, workers=2, progress=True, cache=None, teacher=None, teacher_weight=0.7,
          start_from=None, quantize=False):
    """Train a classifier on the in-focus images ``inputs`` and export it to ``output``.

    Crops are defocused to a random level, then given the paper's random gain
    (log-uniform 0.2-5) and offset (log-uniform 1-1000 counts) and Poisson noise;
    the loss is the ranked probability score, the optimiser Adam with cosine decay.
    With a ``teacher`` (a SavedModel folder) the loss is distilled: ``teacher_weight``
    of it is the RPS against the teacher's distribution for the same patch, which
    teaches a small network what a larger one learnt, uncertainty included.
    ``start_from`` (a SavedModel of ``architecture`` exported by this package)
    continues from its weights; with ``quantize``, on the 8-bit grid
    (:func:`model.training.architectures.quantized`, its ranges measured on
    training patches), which gives the exported model its int8 signature.
    """
    if quantize and start_from is None:
        raise ValueError("quantize fine-tunes a trained model: give start_from")
    from tqdm import tqdm

    from ..predictor import import_tensorflow

    tf = import_tensorflow()  # first, so that its start-up banners stay off the terminal
    import keras

    from .architectures import activation_limits, build, quantized
    from .export import export_saved_model, load_weights
    from .sources import load_sources, sample_patches

    keras.utils.set_random_seed(seed)
    net = build(architecture)
    if start_from is not None:  # before the sources are prepared: a wrong model fails at once
        net = load_weights(net, start_from)
    started = time.time()
    sources = load_sources(inputs, exclude_sources=held_out, workers=workers, seed=seed, cache=cache)
    if not sources:
        raise ValueError(f"no training images left in {list(inputs)} after holding out {held_out}")
    LOGGER.info("%d training images from sources %s (prepared in %.0f s)", len(sources),
                sorted({s.source for s in sources}), time.time() - started)
    if quantize:
        calibration = sample_patches(sources, CALIBRATION_PATCHES, np.random.default_rng(seed + 1))[0]
        limits = activation_limits(net, calibration)
        LOGGER.info("8-bit ranges of the patch and each convolution: %s", [round(v, 2) for v in limits])
        net = quantized(net, limits)
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.01))
    teach = _teacher(teacher) if teacher is not None else None

    @tf.function(autograph=False)  # no Python control flow to convert
    def step(x, y):
        with tf.GradientTape() as tape:
            p = tf.nn.softmax(net(x, training=True))
            loss = ranked_probability_score(p, y)
            if teach is not None:
                soft = tf.stop_gradient(teach(patches=x)["probabilities"])
                loss = (1 - teacher_weight) * loss + teacher_weight * distribution_distance(p, soft)
        grads = tape.gradient(loss, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables))
        return loss

    stop = threading.Event()
    batches = _batches(sources, batch_size, seed, stop)
    running = None
    bar = tqdm(range(steps), desc=f"training {architecture}", disable=not progress, mininterval=5)
    try:
        for i in bar:
            x, y = next(batches)
            loss = float(step(tf.constant(x), tf.constant(y)))
            running = loss if running is None else 0.99 * running + 0.01 * loss
            if i % 200 == 0:
                bar.set_postfix(rps=f"{running:.3f}")
                LOGGER.debug("step %d rps %.4f", i, running)
    finally:
        stop.set()
    export_saved_model(net, output)
    LOGGER.info("trained %d steps in %.0f min; model written to %s", steps, (time.time() - started) / 60, output)
    return net


def _teacher(folder):
    """The teacher's patch signature (patches -> probabilities), callable inside the training step."""
    from ..predictor import PATCH_SIGNATURE, load_model

    model = load_model(folder)
    if model._patch_fn is None:
        raise ValueError(f"the teacher {folder} has no {PATCH_SIGNATURE} signature; export it with this package")
    return model._patch_fn
