"""The seed-variation benchmark's summary: mean ± sd over seeds, and which differences exceed it."""

from __future__ import annotations

import pytest

from benchmarks.seed_variation import END, START, exceeding, summarise, write_results_section

BERNOULLI = {"observation": "Bernoulli", "normalised": False}
GAUSSIAN = {"observation": "Gaussian", "normalised": True}


def run(score: float, knn: float, kind: dict) -> dict:
    return {"test_score": score, "test_knn_accuracy": knn, **kind}


def test_summary_and_which_differences_exceed_the_seed_spread(tmp_path):
    runs = {
        seed: {
            "vae": run(-140 + d, 0.80 + d / 100, BERNOULLI),
            "cvae": run(-141 + d, 0.95 + d / 100, BERNOULLI),
            "ppca": run(500 + d, 0.50, GAUSSIAN),
        }
        for seed, d in enumerate([-1.0, 0.0, 1.0])
    }
    summary = summarise(runs)
    assert summary["vae"]["test_score"] == {"mean": -140.0, "sd": pytest.approx(1.0), "n": 3}
    lines = exceeding(summary)
    scores = [line for line in lines if line.startswith("| score, all")]
    # vae vs cvae: 1 nat apart, 2 se = 2 sqrt(2/3) = 1.63: within; no Bernoulli ELBO vs Gaussian row
    assert len(scores) == 1 and "vae vs cvae" in scores[0] and "| within |" in scores[0]
    knn = [line for line in lines if line.startswith("| k-NN")]
    assert any("vae vs cvae" in line and "exceeds | cvae |" in line for line in knn)
    assert any("vae vs ppca" in line and "exceeds | vae |" in line for line in knn)

    doc = tmp_path / "results.md"
    doc.write_text(f"# Results\n\nbefore\n\n{START}\nold\n{END}\n\nafter\n")
    write_results_section(doc, f"{START}\nnew\n{END}")
    assert doc.read_text() == f"# Results\n\nbefore\n\n{START}\nnew\n{END}\n\nafter\n"
