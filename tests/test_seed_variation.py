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


def test_combine_summarises_per_seed_files_and_refuses_mixed_settings(tmp_path):
    import json

    from benchmarks.seed_variation import combine

    settings = {"kind": "reduced", "epochs": 1, "iwae_images": 10}
    files = []
    for seed, d in enumerate([-1.0, 0.0, 1.0]):
        path = tmp_path / f"seed{seed}.json"
        runs = {str(seed): {"vae": run(-140 + d, 0.8, BERNOULLI), "cvae": run(-150 + d, 0.8, BERNOULLI)}}
        path.write_text(
            json.dumps({"settings": {**settings, "seeds": [seed]}, "runs": runs, "wall_time_s": 1.0})
        )
        files.append(path)
    doc = tmp_path / "results.md"
    doc.write_text("# Results\n")
    combine(files, tmp_path / "all.json", doc)
    combined = json.loads((tmp_path / "all.json").read_text())
    assert combined["settings"]["seeds"] == [0, 1, 2]
    assert combined["summary"]["vae"]["test_score"] == {"mean": -140.0, "sd": pytest.approx(1.0), "n": 3}
    assert START in doc.read_text()

    other = tmp_path / "other.json"
    other.write_text(
        json.dumps({"settings": {**settings, "epochs": 2, "seeds": [3]}, "runs": {}, "wall_time_s": 1})
    )
    with pytest.raises(SystemExit, match="other settings"):
        combine([files[0], other], tmp_path / "x.json", doc)
    with pytest.raises(SystemExit, match="in two files"):
        combine([files[0], files[0]], tmp_path / "x.json", doc)
    partial = tmp_path / "partial.json"
    runs = {"2": {"vae": run(-140, 0.8, BERNOULLI)}}
    partial.write_text(json.dumps({"settings": {**settings, "seeds": [2]}, "runs": runs, "wall_time_s": 1.0}))
    with pytest.raises(SystemExit, match="different models"):
        combine([files[0], partial], tmp_path / "x.json", doc)
