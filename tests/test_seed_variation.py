"""The seed-variation benchmark's summary: mean ± sd over seeds, and which differences exceed it."""

from __future__ import annotations

import pytest

from benchmarks.seed_variation import END, START, exceeding, write_results_section
from pml_ops.density.seed_spread import summarise

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


def test_report_shows_the_seed_spread_and_only_the_differences_that_exceed_it(tmp_path):
    import json

    from pml_ops.report.study import seed_variation_tables

    assert seed_variation_tables(tmp_path / "absent.json") == []
    runs = {
        seed: {"vae": run(-140 + d, 0.8 + d / 100, BERNOULLI), "cvae": run(-150 + d, 0.8, BERNOULLI)}
        for seed, d in enumerate([-1.0, 0.0, 1.0])
    }
    settings = {
        "seeds": [0, 1, 2],
        "train_images": 100,
        "test_images": 50,
        "epochs": 1,
        "iwae_samples": 5,
        "iwae_images": 10,
    }
    path = tmp_path / "seeds.json"
    path.write_text(json.dumps({"settings": settings, "summary": summarise(runs)}))
    spread, exceeding_table = seed_variation_tables(path)
    assert spread.rows[0]["score, all test images (nats/image)"] == "-140 ± 1"
    assert [(row["metric"], row["better"]) for row in exceeding_table.rows] == [
        ("score, all test images (nats/image)", "vae")
    ]
