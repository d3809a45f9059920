"""The CVAE decoders' transposed convolutions: oneDNN against PyTorch's im2col kernel
(`slow_conv_transpose2d`), per layer and in the whole training step and IWAE pass, at 1 and 2
threads (what `FastConvTranspose2d` in pml_ops/density/architectures.py chooses from).

Per layer: a training batch (128, forward + backward) and an inference pass of as many samples
as the IWAE decodes at once under the default 64 MiB budget. Whole model: the training step
(Adam, batch 128) and the IWAE (K = 1000) per image, with the decoders' transposed convolutions
as plain `nn.ConvTranspose2d` (oneDNN, channels-last in inference: the previous code) against
`FastConvTranspose2d` (now). Variants alternate; best of `--rounds` rounds of `--repeats` calls.

    python benchmarks/deconv_kernels.py --out benchmarks/results/deconv_kernels.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pml_ops.config import ConvVaeArchitecture
from pml_ops.core.resources import retain_freed_memory
from pml_ops.density.architectures import INFERENCE_CHUNK, FastConvTranspose2d, build_model
from pml_ops.density.autoencoder import VAE
from pml_ops.density.batching import decoder_bytes_per_sample, rows_within

STUDY: dict[str, Any] = {"latent_dim": 2, "channels": [16, 32], "kernel_size": 3, "stride": 2, "padding": 1}
STUDY |= {"output_padding": 1, "hidden": [], "decoder": "bernoulli"}
# params_tuned.yaml
TUNED: dict[str, Any] = STUDY | {"channels": [8], "kernel_size": 7, "padding": 3, "hidden": [128]}
ARCHITECTURES = {"cvae": STUDY, "cvae_tuned": TUNED}
BUDGET_BYTES = 64 * 2**20


class OneDnnConvTranspose2d(nn.ConvTranspose2d):
    """The previous decoder layer: oneDNN, on a channels-last copy of the input in inference."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if torch.is_inference_mode_enabled():
            x = x.contiguous(memory_format=torch.channels_last)
        return super().forward(x, output_size)


def best_ms(work: Callable[[], object], repeats: int, rounds: int) -> float:
    work()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            work()
        times.append((time.perf_counter() - start) / repeats * 1e3)
    return min(times)


def im2col(layer: nn.ConvTranspose2d, x: torch.Tensor, chunk: int | None) -> torch.Tensor:
    k, s, p, op = (list(t) for t in (layer.kernel_size, layer.stride, layer.padding, layer.output_padding))
    d = list(layer.dilation)
    parts = x.split(chunk) if chunk else [x]
    deconvolve = torch.ops.aten.slow_conv_transpose2d
    return torch.cat([deconvolve(c, layer.weight, k, layer.bias, s, p, op, d) for c in parts])


def with_layers(model: VAE, kind: type[nn.ConvTranspose2d]) -> VAE:
    """`model` with every transposed convolution's forward that of `kind` (same weights)."""
    for layer in model.decoder.modules():
        if isinstance(layer, nn.ConvTranspose2d):
            layer.__class__ = kind
    return model


def time_layer(layer: nn.ConvTranspose2d, side: int, samples: int, repeats: int, rounds: int) -> dict:
    """One layer on a `side` x `side` input: a training batch and an IWAE pass of `samples`."""

    def onednn(x: torch.Tensor) -> torch.Tensor:  # nn.ConvTranspose2d's own forward
        stride, padding, output_padding = layer.stride, [int(p) for p in layer.padding], layer.output_padding
        return F.conv_transpose2d(x, layer.weight, layer.bias, stride, padding, output_padding)

    x_train = torch.randn(128, layer.in_channels, side, side, requires_grad=True)
    grad = torch.randn_like(onednn(x_train))

    def train(forward: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def step() -> None:
            layer.zero_grad(set_to_none=True)
            x_train.grad = None
            forward().backward(grad)

        return step

    x = torch.randn(samples, layer.in_channels, side, side)
    x_last = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        error = (im2col(layer, x, INFERENCE_CHUNK) - onednn(x)).abs().max().item()
        inference = {
            "oneDNN": best_ms(lambda: onednn(x), repeats, rounds),
            "oneDNN channels-last": best_ms(lambda: onednn(x_last), repeats, rounds),
            "im2col": best_ms(lambda: im2col(layer, x, None), repeats, rounds),
            f"im2col, chunks of {INFERENCE_CHUNK}": best_ms(
                lambda: im2col(layer, x, INFERENCE_CHUNK), repeats, rounds
            ),
        }
    training = {
        "oneDNN": best_ms(train(lambda: onednn(x_train)), repeats, rounds),
        "im2col": best_ms(train(lambda: im2col(layer, x_train, None)), repeats, rounds),
    }
    shape = f"{layer.in_channels}->{layer.out_channels} k{layer.kernel_size[0]}, {side}x{side}"
    return {
        "layer": shape,
        "inference_samples": samples,
        "max_abs_difference": error,
        "training_batch_ms": training,
        "inference_pass_ms": inference,
    }


def layer_rows(repeats: int, rounds: int) -> list[dict]:
    rows = []
    for name, spec in ARCHITECTURES.items():
        model = build_model(ConvVaeArchitecture(**spec), seed=0)
        samples = rows_within(BUDGET_BYTES, decoder_bytes_per_sample(model))
        side = 28 // 2 ** len(spec["channels"])
        for layer in (m for m in model.decoder.modules() if isinstance(m, nn.ConvTranspose2d)):
            rows.append({"model": name} | time_layer(layer, side, samples, repeats, rounds))
            side *= 2
    return rows


def time_model(
    model: VAE, x: torch.Tensor, iwae_images: int, repeats: int, rounds: int
) -> tuple[float, float]:
    """(ms per training step, ms of IWAE K = 1000 per image)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
    noise = torch.Generator().manual_seed(0)
    samples = rows_within(BUDGET_BYTES, decoder_bytes_per_sample(model))

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        (-model.elbo(x, noise).mean()).backward()
        optimiser.step()

    def iwae() -> None:
        with torch.inference_mode():
            model.log_weights(x[:iwae_images], 1000, noise, samples_per_pass=samples)

    return best_ms(step, repeats * 2, rounds), best_ms(iwae, 1, rounds) / iwae_images


def model_rows(repeats: int, rounds: int, iwae_images: int) -> list[dict]:
    rows = []
    x = (torch.rand(128, 1, 28, 28, generator=torch.Generator().manual_seed(0)) > 0.8).float()
    for name, spec in ARCHITECTURES.items():
        row: dict = {"model": name}
        for label, kind in (("previous", OneDnnConvTranspose2d), ("now", FastConvTranspose2d)):
            model = with_layers(build_model(ConvVaeArchitecture(**spec), seed=0), kind)
            step_ms, iwae_ms = time_model(model, x, iwae_images, repeats, rounds)
            row[f"train_step_ms_{label}"], row[f"iwae_ms_per_image_{label}"] = step_ms, iwae_ms
        row["train_step_speedup"] = row["train_step_ms_previous"] / row["train_step_ms_now"]
        row["iwae_speedup"] = row["iwae_ms_per_image_previous"] / row["iwae_ms_per_image_now"]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iwae-images", type=int, default=4)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    retain_freed_memory()
    results: dict = {"machine": {"processor": platform.processor(), "torch": torch.__version__}, "runs": []}
    for threads in args.threads:
        torch.set_num_threads(threads)
        layers = layer_rows(args.repeats, args.rounds)
        run = {
            "threads": threads,
            "layers": layers,
            "models": model_rows(args.repeats, args.rounds, args.iwae_images),
        }
        results["runs"].append(run)
        for row in run["layers"]:
            print(threads, row["model"], row["layer"], row["training_batch_ms"], row["inference_pass_ms"])
        for row in run["models"]:
            print(threads, row)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
