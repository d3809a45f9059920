"""The CVAE decoder's transposed convolutions, four ways, one thread, 10,000 samples, inference
mode: `conv_transpose2d`, the same on channels-last tensors (kept, see
pml_ops/density/architectures.py), a sub-pixel form (one dense conv2d + pixel_shuffle) and
matmul + `F.fold` (col2im). Each is checked against `conv_transpose2d` first; best of 7, 2 rounds.

    python benchmarks/conv_transpose.py
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn


def subpixel_conv_transpose(layer: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """Square-kernel transposed convolution as one conv2d with s*s*C_out channels + pixel_shuffle."""
    k, s, p, op = layer.kernel_size[0], layer.stride[0], layer.padding[0], layer.output_padding[0]
    taps = []  # per output phase a: (input offset d, kernel tap t), out[s*m + a] = sum x[m + d] w[t]
    for a in range(s):
        c, r = divmod(a + p, s)
        taps.append([(c - j, r + s * j) for j in range(math.ceil((k - r) / s)) if r + s * j < k])
    d_min = min(d for phase in taps for d, _ in phase)
    size = max(d for phase in taps for d, _ in phase) - d_min + 1
    index = torch.full((s, s, size, size), k * k, dtype=torch.long)
    for ay, rows in enumerate(taps):
        for ax, cols in enumerate(taps):
            for dy, ty in rows:
                for dx, tx in cols:
                    index[ay, ax, dy - d_min, dx - d_min] = ty * k + tx
    c_in, c_out = layer.weight.shape[:2]
    flat = F.pad(layer.weight.reshape(c_in, c_out, k * k), (0, 1))
    dense = flat[:, :, index.flatten()].reshape(c_in, c_out, s, s, size, size)
    dense = dense.permute(1, 2, 3, 0, 4, 5).reshape(c_out * s * s, c_in, size, size)
    height, width = x.shape[-2:]
    out_h, out_w = (height - 1) * s - 2 * p + k + op, (width - 1) * s - 2 * p + k + op
    m_h, m_w = -(-out_h // s), -(-out_w // s)
    x = F.pad(x, (-d_min, m_w + size - 1 - width + d_min, -d_min, m_h + size - 1 - height + d_min))
    y = F.pixel_shuffle(F.conv2d(x, dense, layer.bias.repeat_interleave(s * s)), s)
    return y[..., :out_h, :out_w]


def fold_conv_transpose(layer: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """Transposed convolution as a matmul to columns and `F.fold` (col2im)."""
    n, c_in, h, w = x.shape
    k, s, p, op = layer.kernel_size[0], layer.stride[0], layer.padding[0], layer.output_padding[0]
    out = (h - 1) * s - 2 * p + k + op
    cols = torch.matmul(layer.weight.reshape(c_in, -1).t(), x.reshape(n, c_in, h * w))
    return F.fold(cols, (out, out), k, padding=p, stride=s) + layer.bias.view(1, -1, 1, 1)


def best(work, repeats: int = 7) -> float:
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(c_in: int, c_out: int, side: int, n: int) -> None:
    """Check each variant against `conv_transpose2d`, then time them, two rounds."""
    layer = nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, 1)
    x = torch.randn(n, c_in, side, side)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    flops = 2 * n * c_in * c_out * 9 * side * side
    variants = {
        "conv_transpose2d": lambda: layer(x),
        "channels_last": lambda: layer(x_cl),
        "subpixel": lambda: subpixel_conv_transpose(layer, x),
        "matmul+fold": lambda: fold_conv_transpose(layer, x),
    }
    with torch.inference_mode():
        reference = layer(x)
        for name, work in variants.items():
            torch.testing.assert_close(work(), reference, rtol=1e-4, atol=1e-4, msg=name)
        for _ in range(2):
            timings = {name: best(work) for name, work in variants.items()}
            print(
                f"{c_in}->{c_out} {side}x{side}: "
                + ", ".join(
                    f"{k} {v * 1e3:.0f} ms ({flops / v / 1e9:.1f} GFLOP/s)" for k, v in timings.items()
                )
            )


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for c_in, c_out, side in [(32, 16, 7), (16, 1, 14)]:
        measure(c_in, c_out, side, 10_000)


if __name__ == "__main__":
    main()
