"""CPU compute options for the density models, one at a time against the current path.

For the VAE and CVAE training step (the params.yaml architectures, batch size and lr, real MNIST
images): Adam as `train_vae` builds it (torch's CPU default, a for-loop over parameters) against
`foreach=True` and `fused=True`; `torch.compile` (inductor) of the encoder and decoder, with its
compile time; for the CVAE, channels-last on the encoder input and oneDNN switched off
(`torch.backends.mkldnn.flags(enabled=False)`). For the IWAE evaluation (`VaeModel.iwae`, K =
evaluate.iwae_samples): the current path against bf16 autocast of the decoder and a compiled
decoder. Every variant is also checked against the current path: the loss and gradients of one
training step (`torch.testing.assert_close` at float32 tolerances), the weights after `--steps`
steps, and for the IWAE the bound's largest difference in nats.

The variants of one model alternate `--rounds` times in one process (median of the rounds); the
sgemm reference (2048 x 2048 float32 matmul, best of 5) is measured before and after each model,
all at the same thread count. FLOPs are torch's FlopCounterMode counts. Run from the project root
after `dvc repro prepare`:

    python benchmarks/compute_options.py --threads 2 --out benchmarks/results/compute_options.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pml_ops.config import load_params
from pml_ops.core.io import write_json
from pml_ops.data.mnist import load_mnist
from pml_ops.density.architectures import build_model
from pml_ops.density.autoencoder import VAE
from pml_ops.density.data import image_tensor
from pml_ops.density.models.vae import VaeModel

Context = Callable[[], contextlib.AbstractContextManager]
ADAM = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def sgemm_flops_per_s(size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best


def _seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def compiled(model: VAE) -> VAE:
    """The model with its encoder and decoder compiled by inductor (the noise stays eager)."""
    model.encoder = torch.compile(model.encoder)  # type: ignore[assignment]
    model.decoder = torch.compile(model.decoder)  # type: ignore[assignment]
    return model


class ChannelsLastInput(nn.Module):
    """Wraps the encoder: its input goes in channels-last (the decoder is left as it is)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.inner = encoder

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inner(x.contiguous(memory_format=torch.channels_last))


class Bf16Decoder(nn.Module):
    """Runs the wrapped decoder under CPU bf16 autocast and returns float32 logits."""

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.inner = decoder

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.inner(z).float()


def make_step(
    model: VAE, adam: dict, context: Context, lr: float
) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, **adam)

    def step(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        with context():
            loss = -model.elbo(x, generator).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return loss.detach()

    return step


def variant_context(variant: str) -> Context:
    if variant == "no_mkldnn":
        return lambda: torch.backends.mkldnn.flags(enabled=False)
    return contextlib.nullcontext


def train_variant(
    arch, variant: str, lr: float = 1e-3
) -> tuple[VAE, Callable[[torch.Tensor, torch.Generator], torch.Tensor]]:
    model = build_model(arch, 0).train()
    adam = ADAM.get(variant.removeprefix("adam_"), {})
    if variant.startswith("compile"):
        compiled(model)
        adam = ADAM["fused"] if variant == "compile_fused" else {}
    elif variant == "channels_last_encoder":
        model.encoder = ChannelsLastInput(model.encoder)
    return model, make_step(model, adam, variant_context(variant), lr)


def run_steps(step, batches: list[torch.Tensor], seed: int = 1) -> tuple[float, list[float]]:
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    losses = [step(x, generator).item() for x in batches]
    return time.perf_counter() - start, losses


def first_step_check(arch, variant: str, x: torch.Tensor) -> dict:
    """Loss and gradients of one step of `variant` against the current path (float32 tolerance)."""
    out = {}
    grads = []
    for v in ("adam_default", variant):
        model, _ = train_variant(arch, v)
        with variant_context(v)():
            loss = -model.elbo(x, torch.Generator().manual_seed(7)).mean()
            loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (l0, g0), (l1, g1) = grads
    out["loss_abs_diff"] = abs(l0 - l1).item()
    out["grad_max_abs_diff"] = max((a - b).abs().max().item() for a, b in zip(g0, g1, strict=True))
    try:
        torch.testing.assert_close(l1, l0)
        torch.testing.assert_close(g1, g0)
        out["assert_close"] = True
    except AssertionError:
        out["assert_close"] = False
    return out


def bench_training(
    name: str, section, train_t: torch.Tensor, variants: list[str], rounds: int, steps: int
) -> dict:
    arch, batch_size, lr = section.architecture, section.training.batch_size, section.training.lr
    batches = [train_t[i * batch_size : (i + 1) * batch_size] for i in range(steps)]
    result: dict = {}
    built = {}
    for variant in variants:
        model, step = train_variant(arch, variant, lr)
        compile_s = 0.0
        if variant.startswith("compile"):  # the first steps compile (inductor), then reuse the code
            start = time.perf_counter()
            run_steps(step, batches[:2])
            compile_s = time.perf_counter() - start
        built[variant] = (arch, step, compile_s)
    times: dict[str, list[float]] = {v: [] for v in variants}
    losses: dict[str, list[float]] = {}
    for _ in range(rounds):
        for variant in variants:
            # a fresh model each round so every variant trains the same trajectory
            model, step = train_variant(arch, variant, lr)
            if variant.startswith("compile"):
                run_steps(step, batches[:1])  # recompiles are cached: warm it for this instance
                model, step = train_variant(arch, variant, lr)
            seconds, trace = run_steps(step, batches)
            times[variant].append(seconds)
            losses[variant] = trace
    with FlopCounterMode(display=False) as counter:
        model = build_model(arch, 0)
        (-model.elbo(batches[0]).mean()).backward()
    flops_per_image = counter.get_total_flops() / batch_size
    for variant in variants:
        median = statistics.median(times[variant])
        result[variant] = {
            "images_per_s": steps * batch_size / median,
            "seconds_per_step": median / steps,
            "rounds_s": times[variant],
            "compile_s": built[variant][2] or None,
            "gflop_per_s": flops_per_image * steps * batch_size / median / 1e9,
            "final_loss_diff_vs_default": abs(losses[variant][-1] - losses["adam_default"][-1]),
            "first_step": first_step_check(arch, variant, batches[0]) if variant != "adam_default" else None,
        }
        print(f"{name} {variant}: {result[variant]['images_per_s']:.0f} img/s {times[variant]}", flush=True)
    result["flops_per_image"] = flops_per_image
    return result


def bench_iwae(name: str, section, params, test: np.ndarray, rounds: int) -> dict:
    k = params.evaluate.iwae_samples
    device = torch.device("cpu")

    def model_with(variant: str) -> VaeModel:
        vm = VaeModel(
            name, name, section.architecture, section.training, 0, device, params.evaluate.memory_budget_mib
        )
        vm.module_ = build_model(section.architecture, 0).eval()
        if variant == "compile":
            vm.module_.decoder = torch.compile(vm.module_.decoder)  # type: ignore[assignment]
        if variant == "bf16_autocast":
            vm.module_.decoder = Bf16Decoder(vm.module_.decoder)
        return vm

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        build_model(section.architecture, 0).eval().iwae(torch.rand(1, 1, 28, 28), k)
    flops = counter.get_total_flops() * len(test)
    out: dict = {"flops": flops, "images": len(test), "k": k}
    models = {v: model_with(v) for v in ("current", "bf16_autocast", "compile")}
    bounds = {}
    compile_s = _seconds(lambda: models["compile"].iwae(test, k))
    times: dict[str, list[float]] = {v: [] for v in models}
    for _ in range(rounds):
        for v, vm in models.items():
            start = time.perf_counter()
            bounds[v] = np.asarray(vm.iwae(test, k), dtype=np.float64)
            times[v].append(time.perf_counter() - start)
    for v in models:
        median = statistics.median(times[v])
        out[v] = {
            "seconds": median,
            "rounds_s": times[v],
            "gflop_per_s": flops / median / 1e9,
            "bound_max_abs_diff_nats": float(np.abs(bounds[v] - bounds["current"]).max()),
            "bound_mean_diff_nats": float((bounds[v] - bounds["current"]).mean()),
        }
        print(
            f"{name} iwae {v}: {median:.3f} s, diff {out[v]['bound_max_abs_diff_nats']:.2e} nats", flush=True
        )
    out["compile"]["compile_s"] = compile_s - out["compile"]["seconds"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="training steps per timed round")
    parser.add_argument("--iwae-images", type=int, default=10)
    parser.add_argument("--models", nargs="+", default=["vae", "cvae"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params()
    data = load_mnist(params.data.path)
    rng = np.random.default_rng(0)
    train_t = image_tensor(
        data.x_train[rng.permutation(len(data.x_train))[: args.steps * 256]], torch.device("cpu")
    )
    test = data.x_test[: args.iwae_images].reshape(-1, 784).astype(np.float32) / 255.0
    report: dict = {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average_1min_start": os.getloadavg()[0],
    }
    for name in args.models:
        section = getattr(params, name)
        variants = ["adam_default", "adam_foreach", "adam_fused", "compile", "compile_fused"]
        if name == "cvae":
            variants += ["channels_last_encoder", "no_mkldnn"]
        sgemm_before = sgemm_flops_per_s()
        train = bench_training(name, section, train_t, variants, args.rounds, args.steps)
        iwae = bench_iwae(name, section, params, test, args.rounds)
        sgemm_after = sgemm_flops_per_s()
        sgemm = (sgemm_before + sgemm_after) / 2 / 1e9
        for variant in variants:
            train[variant]["fraction_of_sgemm"] = train[variant]["gflop_per_s"] / sgemm
        for v in ("current", "bf16_autocast", "compile"):
            iwae[v]["fraction_of_sgemm"] = iwae[v]["gflop_per_s"] / sgemm
        report[name] = {
            "sgemm_gflop_per_s_before_after": [sgemm_before / 1e9, sgemm_after / 1e9],
            "train": train,
            "iwae": iwae,
        }
    report["load_average_1min_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))
    if args.out is not None:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
