"""Run every density model's train and evaluate stage at reduced settings and record the metrics and
a hash of the trained weights, so two versions of the code can be checked to give the same results.

    python -m benchmarks.density_equivalence run --code DIR --out results.json
    python -m benchmarks.density_equivalence compare old.json new.json

`run` copies params.yaml and params_tuned.yaml from DIR into a scratch project, shrinks the
settings (2,000 training and 500 test images, 2 epochs for every family trained by epochs, IWAE
K = 20, GMM max_iter 20), prepares MNIST from $PML_OPS_MNIST_MIRROR and runs
`python -m pipelines.train_density` and `evaluate_density` for each model (`--models`; default:
every model of DIR's params.yaml) with DIR first on PYTHONPATH. `compare` requires every number
to be identical except wall times, throughputs and peak memory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

# measurements of the run, not results: they differ between any two runs of the same code
MEASUREMENTS = {"wall_time_s", "images_per_second", "seconds", "peak_rss_mib"}
ARTIFACT_META = {"meta", "covariance_type"}  # .npz entries that are not weights (header, GMM kind)


def reduce(params: dict) -> dict:
    """The reduced settings, on params.yaml as loaded (any version of the code: no pml_ops)."""
    params["density"]["subset"] = {"train": 2000, "test": 500}
    for family in {entry["family"] for entry in params["models"].values()}:
        if "epochs" in params[family].get("training", {}):  # trained by epochs
            params[family]["training"]["epochs"] = 2
    params["evaluate"]["iwae_samples"] = 20
    if "gmm" in params:
        params["gmm"]["max_iter"] = 20
    return params


def weights_sha256(path: Path) -> str:
    """Hash of the trained numbers only: tensors of a state dict, or the arrays of an .npz."""
    digest = hashlib.sha256()
    if path.suffix == ".pt":
        import torch

        loaded = torch.load(path, map_location="cpu", weights_only=True)
        state = loaded.get("state_dict", loaded)
        for key, tensor in state.items():
            digest.update(key.encode())
            digest.update(tensor.contiguous().numpy().tobytes())
    else:
        with np.load(path, allow_pickle=False) as npz:
            for key in sorted(set(npz.files) - ARTIFACT_META):
                digest.update(key.encode())
                digest.update(np.ascontiguousarray(npz[key]).tobytes())
    return digest.hexdigest()


def run(code: Path, out: Path, models: list[str] | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="density-equivalence-"))
    params = reduce(yaml.safe_load((code / "params.yaml").read_text()))
    models = models or list(params["models"])
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (work / "params_tuned.yaml").write_text((code / "params_tuned.yaml").read_text())
    env = {**os.environ, "PYTHONPATH": str(code.resolve()), "PML_OPS_PROGRESS": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)

    def stage(*args: str) -> None:
        print("+", " ".join(args), flush=True)
        subprocess.run([sys.executable, "-m", *args], cwd=work, env=env, check=True)

    stage("pipelines.prepare")
    results = {}
    for name in models:
        stage("pipelines.train_density", name)
        stage("pipelines.evaluate_density", name)
        metrics = work / params["density"]["metrics_dir"]
        history = metrics / "train" / f"{name}_history.json"
        artifact = next((work / params["density"]["models_dir"]).rglob(f"{name}.*"))
        results[name] = {
            "train": json.loads((metrics / "train" / f"{name}.json").read_text()),
            "evaluate": json.loads((metrics / "evaluate" / f"{name}.json").read_text()),
            "history": json.loads(history.read_text()) if history.is_file() else [],  # closed forms
            "weights_sha256": weights_sha256(artifact),
        }
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out} (scratch project {work})")


def strip_measurements(value):
    if isinstance(value, dict):
        return {k: strip_measurements(v) for k, v in value.items() if k not in MEASUREMENTS}
    if isinstance(value, list):
        return [strip_measurements(v) for v in value]
    return value


def differences(old, new, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            if key not in old or key not in new:
                found.append(f"{where}.{key}: only in {'new' if key in new else 'old'}")
            else:
                found += differences(old[key], new[key], f"{where}.{key}")
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            d
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for d in differences(a, b, f"{where}[{i}]")
        ]
    return [] if old == new else [f"{where}: {old!r} != {new!r}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("--code", type=Path, default=Path("."))
    run_parser.add_argument("--out", type=Path, required=True)
    run_parser.add_argument("--models", nargs="+", default=None, help="default: every model of DIR")
    compare_parser = sub.add_parser("compare")
    compare_parser.add_argument("old", type=Path)
    compare_parser.add_argument("new", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run(args.code, args.out, args.models)
        return
    old, new = (strip_measurements(json.loads(p.read_text())) for p in (args.old, args.new))
    found = differences(old, new)
    print("\n".join(found) if found else f"identical: {len(old)} models, every number and weight hash")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
