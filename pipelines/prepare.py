"""DVC stage `prepare`: fetch, verify and store MNIST as one artifact."""

from pml_ops.config import Params
from pml_ops.data.mnist import fetch_mnist, mirror_list, save_mnist
from pml_ops.stage import run_stage


def prepare(params: Params) -> None:
    mirrors = mirror_list(params.data.mirrors)
    data = fetch_mnist(mirrors, timeout_s=params.data.timeout_s, retries=params.data.retries)
    save_mnist(data, params.data.path)
    print(f"prepare: wrote {params.data.path} ({len(data.y_train)} train, {len(data.y_test)} test)")


if __name__ == "__main__":
    run_stage(prepare)
