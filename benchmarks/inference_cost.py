"""Inference cost per 84x84 patch: the shipped (compact) network against the paper's, same run.

Run: ``python benchmarks/inference_cost.py`` (prints a markdown table). Untrained
weights time the same as trained ones, so the paper's network is built fresh.
"""
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model.training.architectures import build  # noqa: E402

PATCHES = 576  # one 2048x2048 image


def multiply_adds(net):
    """Multiply-accumulates per patch of the convolution and dense layers."""
    total = 0
    for layer in net.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * layer.input.shape[-1] * c_out
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return total


def patches_per_second(net, repeats=7):
    run = tf.function(lambda x: net(x, training=False))
    x = tf.constant(np.random.default_rng(0).random((PATCHES, 84, 84, 1), dtype=np.float32) * 0.1)
    run(x)  # trace and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x).numpy()
        times.append(time.perf_counter() - start)
    return PATCHES / statistics.median(times)


def main():
    rows = []
    for name in ("compact", "paper"):
        net = build(name)
        rows.append((name, net.count_params(), multiply_adds(net), patches_per_second(net)))
    compact, paper = rows
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, TensorFlow {tf.__version__}\n")
    print("| network | parameters | multiply-adds / patch | FLOPs / patch | patches/s (batch of 576) |")
    print("|---|---|---|---|---|")
    for name, params, macs, speed in rows:
        print(f"| {name} | {params / 1e6:.2f} M | {macs / 1e6:.1f} M | {2 * macs / 1e6:.1f} M | {speed:.0f} |")
    print(f"\ncompact vs paper: {paper[2] / compact[2]:.1f}x fewer multiply-adds, "
          f"{compact[3] / paper[3]:.1f}x the throughput")


if __name__ == "__main__":
    main()
