"""The seed-variation study's summary: mean ± sd over seeds, and which differences exceed it."""

from __future__ import annotations

import pytest

from pml_ops.density.seed_spread import summarise
from studies.seed_variation import (
    END,
    START,
    STUDY_END,
    STUDY_KIND,
    STUDY_START,
    exceeding,
    markdown,
    models,
    write_results_section,
)
from tests.conftest import REPO_ROOT

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
            "vae_cb": run(4000 + d, 0.50, {"observation": "continuous Bernoulli", "normalised": True}),
        }
        for seed, d in enumerate([-1.0, 0.0, 1.0])
    }
    summary = summarise(runs)
    assert summary["vae"]["test_score"] == {"mean": -140.0, "sd": pytest.approx(1.0), "n": 3}
    lines = exceeding(summary)
    scores = [line for line in lines if line.startswith("| score, all")]
    # vae vs cvae: 1 nat apart, 2 se = 2 sqrt(2/3) = 1.63: within; no row across observation models
    # (not even two normalised densities: at the grey levels k/255 only bits/dim ranks them)
    assert len(scores) == 1 and "vae vs cvae" in scores[0] and "| within |" in scores[0]
    knn = [line for line in lines if line.startswith("| k-NN")]
    assert any("vae vs cvae" in line and "exceeds | cvae |" in line for line in knn)
    assert any("vae vs ppca" in line and "exceeds | vae |" in line for line in knn)

    doc = tmp_path / "results.md"
    doc.write_text(f"# Results\n\nbefore\n\n{START}\nold\n{END}\n\nafter\n")
    write_results_section(doc, f"{START}\nnew\n{END}")
    assert doc.read_text() == f"# Results\n\nbefore\n\n{START}\nnew\n{END}\n\nafter\n"


def test_study_settings_table_keeps_its_own_section_beside_the_reduced_one(tmp_path):
    runs = {seed: {"vae": run(-140 + d, 0.8, BERNOULLI)} for seed, d in enumerate([-1.0, 0.0, 1.0])}
    doc = tmp_path / "results.md"
    doc.write_text(f"{START}\nreduced\n{END}\n\n{STUDY_START}\nold study\n{STUDY_END}\n")
    write_results_section(doc, markdown(summarise(runs), {"kind": STUDY_KIND, "seeds": [0, 1, 2]}))
    text = doc.read_text()
    assert f"{START}\nreduced\n{END}" in text and "old study" not in text
    study = text.split(STUDY_START, 1)[1].split(STUDY_END, 1)[0]
    assert "| vae | -140 ± 1 |" in study and "the study's, params.yaml" in study


def test_report_shows_the_seed_spread_and_only_the_differences_that_exceed_it(tmp_path):
    import json

    from pml_ops.report.sections import seed_variation_tables

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
    assert "reduced settings: 100 training images, 1 epochs" in spread.caption
    # Table 1's order and names (the results file sorts its keys)
    reordered, _ = seed_variation_tables(path, ["cvae", "vae"])
    assert [row["model"] for row in reordered.rows] == ["CVAE", "VAE"]
    study = {**settings, "kind": "the study's, params.yaml", "epochs": {"vae": 25, "cvae": 25}}
    path.write_text(json.dumps({"settings": study, "summary": summarise(runs)}))
    assert "(the study's, params.yaml: 100 training images, VAE 25, CVAE 25 epochs" in (
        seed_variation_tables(path)[0].caption
    )


def test_combine_summarises_per_seed_files_and_refuses_mixed_settings(tmp_path):
    import json

    from studies.seed_variation import combine

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


def test_the_listed_cb_models_are_bit_for_bit_the_twins_the_benchmark_would_add(
    mnist_mirror, tmp_path, monkeypatch
):
    """params.yaml's vae_cb / cvae_cb, fitted (500 images, 1 epoch), have the same weights as the
    continuous-Bernoulli twins the benchmark builds for a list without them, and the benchmark
    adds no twin (no duplicate name) when the list has them."""
    import copy

    import torch
    import yaml

    from pml_ops.config import parse_params
    from pml_ops.data.mnist import fetch_mnist, save_mnist
    from pml_ops.density import families
    from pml_ops.density.data import density_split
    from pml_ops.density.interface import FitCallbacks

    monkeypatch.chdir(REPO_ROOT)  # cvae_tuned reads params_tuned.yaml
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    save_mnist(fetch_mnist([str(mnist_mirror)]), tmp_path / "mnist.npz")
    raw["data"]["path"] = str(tmp_path / "mnist.npz")
    raw["density"].update(subset={"train": 500, "test": 10}, device="cpu", cpu_threads=1)
    by_epoch = [name for name, family in families.all_families().items() if family.by_epoch]
    for family in by_epoch:
        raw[family]["training"]["epochs"] = 1
    listed = parse_params(raw)
    unlisted = copy.deepcopy(raw)
    del unlisted["models"]["vae_cb"], unlisted["models"]["cvae_cb"]
    twins = {model.name: model for model in models(parse_params(unlisted))}
    expected = []  # each untuned VAE-family model, then its twin
    for name, entry in unlisted["models"].items():
        untuned = entry["family"] in by_epoch and entry["file"] == "params.yaml"
        expected += [name, f"{name}_cb"] if untuned else [name]
    assert list(twins) == expected and {"vae_cb", "cvae_cb"} <= set(twins)
    assert [model.name for model in models(listed)] == list(listed.models)

    split = density_split(listed)
    for name in ("vae_cb", "cvae_cb"):
        ours = families.create(listed, name).fit(split, FitCallbacks())
        theirs = twins[name].fit(split, FitCallbacks())
        assert ours.architecture == theirs.architecture and ours.training == theirs.training
        mine, other = ours.module_.state_dict(), theirs.module_.state_dict()
        assert list(mine) == list(other) and all(torch.equal(mine[k], other[k]) for k in mine)
        assert ours.history_[0]["val_elbo"] == theirs.history_[0]["val_elbo"]
