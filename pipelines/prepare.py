"""DVC stage `prepare`: fetch, verify and store the MNIST-format data set as one artifact."""

import time

import numpy as np

from pml_ops.config import Params
from pml_ops.core.io import write_json
from pml_ops.core.metrics_files import write_metrics
from pml_ops.core.resources import resource_metrics
from pml_ops.data.mnist import dataset, fetch_mnist, mirror_list, save_mnist
from pml_ops.runtime.stage import run_stage


def prepare(params: Params) -> None:
    began = time.perf_counter()
    spec = dataset(params.data.dataset)
    mirrors = mirror_list(params.data.mirrors[params.data.dataset], variable=spec.mirror_env)
    data = fetch_mnist(
        mirrors, timeout_s=params.data.timeout_s, retries=params.data.retries, files=spec.files
    )
    save_mnist(data, params.data.path, spec.name)
    write_json(
        params.data.info,
        {
            "dataset": spec.name,
            "train_label_counts": np.bincount(data.y_train, minlength=10).tolist(),
            "test_label_counts": np.bincount(data.y_test, minlength=10).tolist(),
            "class_names": list(spec.class_names),
            "sha256": {file.stem: file.sha256 for file in spec.files.values()},
        },
    )
    write_metrics(
        params.data.metrics,
        {"train_images": len(data.y_train), "test_images": len(data.y_test), **resource_metrics(began)},
    )
    print(
        f"prepare: wrote {params.data.path}: {spec.title} "
        f"({len(data.y_train)} train, {len(data.y_test)} test)"
    )


if __name__ == "__main__":
    run_stage(prepare)
