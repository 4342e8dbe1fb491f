"""Writing a patch classifier as a SavedModel that follows the serving contract.

See :mod:`model.predictor` for the contract: ``serving_default`` takes a
float32 ``(H, W)`` image and returns ``probabilities`` and ``patches`` for its
84x84 tiles, as the original project's export did; ``predict_patches`` takes
the patches themselves, which is what :func:`model.predict` uses, and
``predict_patches_bfloat16`` the same with the convolutions computed in
bfloat16 (what the predictor picks on CPUs with native bfloat16 arithmetic).
"""
import hashlib
from pathlib import Path

import keras
import tensorflow as tf

from ..constants import PATCH_SIZE
from ..predictor import BFLOAT16_PATCH_SIGNATURE, CHECKSUM_FILE, PATCH_SIGNATURE

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


class _Serving(tf.Module):
    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier
        self.classifier_bfloat16 = bfloat16_twin(classifier)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="input")])
    def serve(self, input):  # noqa: A002 - the contract's input name
        rows = tf.shape(input)[0] // PATCH_SIZE
        cols = tf.shape(input)[1] // PATCH_SIZE
        image = input[:rows * PATCH_SIZE, :cols * PATCH_SIZE]
        patches = tf.reshape(image, [rows, PATCH_SIZE, cols, PATCH_SIZE])
        patches = tf.reshape(tf.transpose(patches, [0, 2, 1, 3]), [-1, PATCH_SIZE, PATCH_SIZE, 1])
        return {"probabilities": self.predict(patches)["probabilities"], "patches": patches}

    @tf.function(input_signature=[_PATCHES])
    def predict(self, patches):
        return {"probabilities": tf.nn.softmax(self.classifier(patches, training=False))}

    @tf.function(input_signature=[_PATCHES])
    def predict_bfloat16(self, patches):
        logits = tf.cast(self.classifier_bfloat16(patches, training=False), tf.float32)
        return {"probabilities": tf.nn.softmax(logits)}


def export_saved_model(classifier, folder):
    """Save ``classifier`` (patches -> logits) under the serving contract, with checksums."""
    folder = Path(folder)
    module = _Serving(classifier)
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve,
                                                         PATCH_SIGNATURE: module.predict,
                                                         BFLOAT16_PATCH_SIGNATURE: module.predict_bfloat16})
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}"
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != CHECKSUM_FILE]
    (folder / CHECKSUM_FILE).write_text("\n".join(lines) + "\n")
    return folder
