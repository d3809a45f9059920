"""Per-pixel log-likelihood of the VAE decoders: `pixel_log_likelihood` against the formulation it
replaced (torch's binary cross-entropy with logits, plus for the continuous Bernoulli the log
normaliser eta / tanh(eta / 2) with its series near 0), on the tensors the stages pass it: one
IWAE decoder pass (3,000 latent samples x 784 pixels, about what `evaluate.memory_budget_mib` 64
gives the study's VAE) scored in inference mode, and one training batch (128 x 784) forward and
backward. Best of `--repeats`, the two alternating in one process. The largest difference
between them is reported too.

    python benchmarks/pixel_likelihood.py --threads 2 --out benchmarks/results/pixel_likelihood.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pml_ops.core.io import write_json
from pml_ops.density.autoencoder import pixel_log_likelihood

SMALL_LOGIT = 1e-2


def previous_formulation(logits: torch.Tensor, x: torch.Tensor, decoder: str) -> torch.Tensor:
    """The code before: -BCE with logits, plus the continuous Bernoulli's log normaliser."""
    log_lik = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    if decoder == "bernoulli":
        return log_lik
    eta = logits.abs()
    safe = torch.where(eta < SMALL_LOGIT, torch.ones_like(eta), eta)
    exact = torch.log(safe) - torch.log(torch.tanh(safe / 2))
    return log_lik + torch.where(eta < SMALL_LOGIT, math.log(2.0) + eta.pow(2) / 12, exact)


def best_ms(work, repeats: int) -> float:
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    report: dict = {"threads": args.threads, "load_average_1min": os.getloadavg()[0]}
    for decoder in ("bernoulli", "continuous_bernoulli"):
        for label, rows, backward in (("iwae_pass", 3000, False), ("training_batch", 128, True)):
            logits = torch.randn(rows, 784, generator=generator) * 4
            x = torch.rand(rows, 784, generator=generator)
            leaf = logits.clone().requires_grad_(backward)

            def run(formulation, leaf=leaf, x=x, backward=backward, decoder=decoder) -> None:
                if backward:
                    formulation(leaf, x, decoder).sum().backward()
                else:
                    with torch.inference_mode():
                        formulation(leaf, x, decoder)

            before = best_ms(lambda: run(previous_formulation), args.repeats)
            now = best_ms(lambda: run(pixel_log_likelihood), args.repeats)
            with torch.no_grad():
                difference = pixel_log_likelihood(logits, x, decoder) - previous_formulation(
                    logits, x, decoder
                )
            report[f"{decoder}/{label}"] = {
                "previous_ms": before,
                "now_ms": now,
                "speedup": before / now,
                "max_abs_difference_nats_per_pixel": difference.abs().max().item(),
            }
            print(f"{decoder} {label}: {before:.2f} -> {now:.2f} ms ({before / now:.2f}x)")
    print(json.dumps(report, indent=2))
    if args.out is not None:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
