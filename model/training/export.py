"""Writing a patch classifier as a SavedModel that follows the serving contract.

See :mod:`model.predictor` for the contract: ``serving_default`` takes a
float32 ``(H, W)`` image and returns ``probabilities`` and ``patches`` for its
84x84 tiles, as the original project's export did; ``predict_patches`` takes
the patches themselves, which is what :func:`model.predict` uses.
"""
import hashlib
from pathlib import Path

import tensorflow as tf

from ..constants import PATCH_SIZE
from ..predictor import CHECKSUM_FILE, PATCH_SIGNATURE


class _Serving(tf.Module):
    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="input")])
    def serve(self, input):  # noqa: A002 - the contract's input name
        rows = tf.shape(input)[0] // PATCH_SIZE
        cols = tf.shape(input)[1] // PATCH_SIZE
        image = input[:rows * PATCH_SIZE, :cols * PATCH_SIZE]
        patches = tf.reshape(image, [rows, PATCH_SIZE, cols, PATCH_SIZE])
        patches = tf.reshape(tf.transpose(patches, [0, 2, 1, 3]), [-1, PATCH_SIZE, PATCH_SIZE, 1])
        return {"probabilities": self.predict(patches)["probabilities"], "patches": patches}

    @tf.function(input_signature=[tf.TensorSpec([None, PATCH_SIZE, PATCH_SIZE, 1], tf.float32, name="patches")])
    def predict(self, patches):
        return {"probabilities": tf.nn.softmax(self.classifier(patches, training=False))}


def export_saved_model(classifier, folder):
    """Save ``classifier`` (patches -> logits) under the serving contract, with checksums."""
    folder = Path(folder)
    module = _Serving(classifier)
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve,
                                                         PATCH_SIGNATURE: module.predict})
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}"
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != CHECKSUM_FILE]
    (folder / CHECKSUM_FILE).write_text("\n".join(lines) + "\n")
    return folder
