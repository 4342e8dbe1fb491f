"""Inference cost per 84x84 patch, same run: compact in int8 (v2.5, shipped) and in float32 (v1), lean in
int8 (v2.4), bfloat16 (v2 to v2.3) and float32, and the paper's network.

Run: ``python -m benchmarks.inference_cost`` (prints a markdown table). Untrained
weights time the same as trained ones, so every network is built fresh.
"""
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model.training.architectures import activation_limits, build, quantized  # noqa: E402
from model.training.export import bfloat16_twin, int8_logits  # noqa: E402

PATCHES = 576  # one 2048x2048 image


def multiply_adds(net):
    """Multiply-accumulates per patch of the convolution and dense layers."""
    total = 0
    for layer in net.layers:
        if isinstance(layer, keras.layers.SeparableConv2D):  # depthwise 3x3, then pointwise 1x1
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1]
            total += h * w * c_in * (layer.kernel_size[0] * layer.kernel_size[1] + c_out)
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * layer.input.shape[-1] * c_out
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return total


def patches_per_second(calls, repeats=7):
    """Patches per second of each ``patches -> logits`` call, timed in turns (so a busy moment hits them alike)."""
    runs = {name: tf.function(call) for name, call in calls.items()}
    x = tf.constant(_patches())
    times = {name: [] for name in runs}
    for run in runs.values():
        run(x)  # trace and warm up
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run(x).numpy()
            times[name].append(time.perf_counter() - start)
    return {name: PATCHES / statistics.median(t) for name, t in times.items()}


def _patches():
    return np.random.default_rng(0).random((PATCHES, 84, 84, 1), dtype=np.float32) * 0.1


def report():
    """The markdown table, as the benchmark suite includes it."""
    nets = {name: build(name) for name in ("lean", "compact", "paper")}
    int8 = {f"{name}, int8": quantized(nets[name], activation_limits(nets[name], _patches()))
            for name in ("compact", "lean")}
    nets = {**int8, "lean, bfloat16": bfloat16_twin(nets["lean"]), **nets}
    calls = {name: (lambda x, net=net: net(x, training=False)) for name, net in nets.items()}
    calls.update({name: int8_logits(net) for name, net in int8.items()})
    speed = patches_per_second(calls)
    lines = ["| network | parameters | multiply-adds / patch | FLOPs / patch | patches/s (batch of 576) |",
             "|---|---|---|---|---|"]
    for name, net in nets.items():
        macs = multiply_adds(net)
        lines.append(f"| {name} | {net.count_params() / 1e6:.3f} M | {macs / 1e6:.1f} M | {2 * macs / 1e6:.1f} M "
                     f"| {speed[name]:.0f} |")
    v2, v1 = speed["compact, int8"], speed["compact"]
    lines += ["", f"compact in int8 (v2.5 where the CPU has 8-bit dot products) vs compact in float32 (v1): "
                  f"{v2 / v1:.2f}x the throughput, {v1 / v2:.2f} of the time; "
                  f"lean in int8 (v2.4): {v1 / speed['lean, int8']:.2f} of v1's time; "
                  f"lean in bfloat16 (v2 to v2.3): {v1 / speed['lean, bfloat16']:.2f}; "
                  f"vs the paper's network: {v2 / speed['paper']:.1f}x the throughput"]
    return "\n".join(lines)


def main():
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, TensorFlow {tf.__version__}\n")
    print(report())


if __name__ == "__main__":
    main()
