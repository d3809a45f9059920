"""Stage metrics files hold numbers only; everything else goes to the info file beside them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pml_ops.core.metrics_files import info_path, split_metrics, write_metrics, write_split


def test_split_keeps_numbers_and_moves_text_flags_lists_and_dicts(tmp_path):
    metrics = {
        "test_score": -142.5,
        "test_images": np.int64(100),
        "peak_rss_mib": np.float32(12.5),
        "missing": float("nan"),
        "model": "vae",
        "normalised": False,
        "flag": np.bool_(True),
        "counts": [1, 2],
        "sha256": {"a": "00"},
    }
    numbers, info = split_metrics(metrics)
    assert sorted(numbers) == ["missing", "peak_rss_mib", "test_images", "test_score"]
    assert sorted(info) == ["counts", "flag", "model", "normalised", "sha256"]

    del metrics["flag"]
    write_split(tmp_path / "m.json", tmp_path / "m_info.json", metrics)
    written = json.loads((tmp_path / "m.json").read_text())
    assert written["test_images"] == 100 and type(written["test_images"]) is int
    assert written["peak_rss_mib"] == 12.5 and np.isnan(written["missing"])
    assert json.loads((tmp_path / "m_info.json").read_text())["normalised"] is False


def test_a_metrics_file_with_anything_but_numbers_is_refused(tmp_path):
    with pytest.raises(TypeError, match=r"metrics must be numbers; move \['success'\]"):
        write_metrics(tmp_path / "m.json", {"best_f": 1.0, "success": True})
    assert not (tmp_path / "m.json").exists()


def test_info_path_sits_beside_the_metrics_file():
    assert info_path("metrics/evaluate/vae.json").as_posix() == "metrics/evaluate/vae_info.json"
