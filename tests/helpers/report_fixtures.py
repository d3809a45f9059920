"""A synthetic report with tiny generated PNGs, shared by the renderer and browser tests."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from pml_ops.report import Figure, Report, Section, Table

MODELS = ["VAE", "CVAE", "PPCA", "GMM"]


def tiny_png(path: Path, width: int, height: int, rgb: tuple[int, int, int]) -> Path:
    """Write a solid-colour RGB PNG by hand (no imaging library involved)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    blob = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * height))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob + chunk(b"IEND", b""))
    return path


def synthetic_report(base: Path) -> Report:
    tiny_png(base / "figures" / "latent.png", 40, 30, (200, 30, 30))
    tiny_png(base / "figures" / "grid.png", 24, 24, (30, 30, 200))
    tiny_png(base / "figures" / "gp" / "posterior.png", 32, 16, (30, 160, 30))
    rows = [
        {"model": name, "test ELBO": -140.0 - 3.5 * i, "study ELBO": -150.0 + i, "MSE": 0.01 * (i + 1)}
        for i, name in enumerate(MODELS)
    ]
    rows[2]["study ELBO"] = None
    comparison = Table(
        caption="Table 1: density models on the MNIST test set",
        columns=["model", "test ELBO", "study ELBO", "MSE"],
        rows=rows,
        notes={"study ELBO": "the number reported by the original study"},
        formats={"MSE": ".4f"},
    )
    return Report(
        title="pml-ops study report",
        sections=[
            Section(
                title="Density models",
                text="All models use a **2-D** latent space.\n\n- trained on 60000 images\n- tested on 10000",
                tables=[comparison],
                figures=[
                    Figure(path=Path("figures/latent.png"), caption="Test set in latent space"),
                    Figure(path=Path("figures/grid.png"), caption="Decoder over a latent grid"),
                ],
            ),
            Section(
                title="Gaussian process",
                text="NUTS, 4 chains <script>alert(1)</script>.",
                figures=[Figure(path=Path("figures/gp/posterior.png"), caption="Posterior | density")],
            ),
        ],
        environment={"python": "3.11.7", "torch": "2.13.0", "git commit": "abc123"},
        stage_times={"prepare": 3.25, "train_vae": 61.0},
    )
