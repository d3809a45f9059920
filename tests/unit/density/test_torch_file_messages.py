"""What a refused torch file says: one line, never torch's advice to load it with weights_only=False."""

from __future__ import annotations

import pickle

import pytest
import torch

from pml_ops.core.errors import CheckpointError
from pml_ops.density.training import _load_checkpoint


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_with_pickled_code_is_refused_as_unsafe(tmp_path):
    marker, path = tmp_path / "ran", tmp_path / "vae.pt"
    torch.save({"fingerprint": "f", "payload": _Payload(marker)}, path)
    with pytest.raises(CheckpointError) as refused:
        _load_checkpoint(path, "f")
    message = str(refused.value)
    assert not marker.exists()
    assert message == (
        f"{path}: the checkpoint holds pickled objects besides tensors and may be unsafe; it was not "
        "loaded; delete it to start over"
    )


def test_a_truncated_checkpoint_is_one_line_naming_the_fix(tmp_path):
    path = tmp_path / "vae.pt"
    torch.save({"fingerprint": "f", "weights": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(
        CheckpointError, match=r"the checkpoint is corrupt or truncated \(.+\); delete it"
    ) as refused:
        _load_checkpoint(path, "f")
    assert "\n" not in str(refused.value) and "weights_only" not in str(refused.value)


def test_a_plain_pickle_is_refused_too(tmp_path):
    path = tmp_path / "vae.pt"
    path.write_bytes(pickle.dumps({"fingerprint": "f"}))
    with pytest.raises(CheckpointError, match="delete it to start over"):
        _load_checkpoint(path, "f")
