"""Table 1: the density models side by side, one row per model (`comparison_rows` of
`pml_ops.density.evaluation`), columns grouped by unit, each number `mean ± se` over images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pml_ops.report.render import markdown_table
from pml_ops.report.spec import Table


def estimate(row: dict[str, Any], key: str, spec: str) -> str | None:
    """`mean ± se` of metric `key` (with `MC ±` when it has a Monte Carlo error), or None."""
    value = row.get(key)
    if value is None:
        return None
    text = format(value, spec)
    if row.get(f"{key}_se") is not None:
        text += f" ± {row[f'{key}_se']:{spec}}"
    if row.get(f"{key}_mc_se") is not None:
        text += f" (MC ± {row[f'{key}_mc_se']:{spec}})"
    return text


# Table 1's columns, grouped by unit: (group, metrics key, column title, format).
GROUPS = {
    "nats": "nats/image",
    "bpd": "bits/dim",
    "mse": "MSE/pixel",
    "knn": "k-NN accuracy",
}
COLUMNS = [
    ("nats", "test_score", "score, all test images", ".2f"),
    ("nats", "subset_score", "score, IWAE images", ".2f"),
    ("nats", "test_iwae", "IWAE, IWAE images", ".2f"),
    ("nats", "iwae_gap", "IWAE - ELBO", ".2f"),
    ("bpd", "bits_per_dim", "dequantised, IWAE images", ".4f"),
    ("mse", "test_mse_posterior_sample", "posterior sample", ".4f"),
    ("mse", "test_mse_posterior_mean", "posterior mean", ".4f"),
    ("knn", "test_knn_accuracy", "latent means", ".4f"),
]


def column_title(group: str, title: str) -> str:
    return f"[{GROUPS[group]}] {title}"


def _column_notes(rows: list[dict[str, Any]], family_notes: Sequence[str]) -> dict[str, str]:
    """What each of Table 1's columns measures, with the image counts, K and k of `rows` and how
    each family computes its score (`family_notes`)."""
    first = rows[0] if rows else {}
    n_all, n_subset = first.get("test_images"), first.get("subset_images")
    k = next((row["iwae_samples"] for row in rows if row.get("iwae_samples")), None)
    knn = next((row["knn_neighbors"] for row in rows if row.get("knn_neighbors")), None)
    return {
        column_title("nats", "score, all test images"): (
            f"mean log-score over all {f'{n_all} ' if n_all else ''}test images (pixel values k/255), "
            "nats per image, as each family computes it"
            + "".join(f". {note}" for note in family_notes)
            + ". ± is the standard error over images; MC ± the Monte Carlo error of a sampled score "
            "(from two independent draws per image)"
        ),
        column_title("nats", "score, IWAE images"): (
            f"the same score on the {f'{n_subset} ' if n_subset else ''}test images that the IWAE and "
            "bits/dim use (the "
            f"first {n_subset or 'evaluate.iwae_images'}), so these columns compare like with like"
        ),
        column_title("nats", "IWAE, IWAE images"): (
            f"importance-weighted bound on log p(x), K = {k}, same images; MC ± by the delta method "
            "from the importance weights. Bernoulli VAE/CVAE only: a continuous-Bernoulli one's IWAE "
            "is taken at the dequantised points, as its bits/dim"
        ),
        column_title("nats", "IWAE - ELBO"): "the bound gap, paired per image (same images, same scale)",
        column_title("bpd", "dequantised, IWAE images"): (
            "bits per dimension of the 8-bit images under uniform dequantisation (k + u) / 256 with one "
            "fixed noise draw shared by all models; normalised densities only, exact or an upper bound "
            "as each family's note under the score says. A model that is not a density over grey "
            "levels has no bits/dim"
        ),
        column_title("mse", "posterior sample"): (
            "per-pixel MSE of the decoder mean at one posterior sample (as the study), images in [0, 1]"
        ),
        column_title("mse", "posterior mean"): "per-pixel MSE of the decoder mean at the posterior mean",
        column_title("knn", "latent means"): (
            f"{knn}-nearest-neighbour classifier fit on the training latent means, test accuracy "
            "(± binomial standard error)"
        ),
    }


def _row_cells(row: dict[str, Any], extra: dict[str, tuple[str, dict[str, Any], str]]) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "model": row["model"],
        "objective / observation": f"{row.get('objective')}: {row.get('observation')}",
    }
    for group, key, title, spec in COLUMNS:
        cell[column_title(group, title)] = estimate(row, key, spec)
    if row.get("bits_per_dim") is None:
        cell[column_title("bpd", "dequantised, IWAE images")] = (
            "not a density" if not row.get("normalised", True) else None
        )
    for title, (_, values, _) in extra.items():
        cell[title] = values.get(row["model"])
    return cell


def table1(
    rows: list[dict[str, Any]],
    caption: str = "",
    extra: dict[str, tuple[str, dict[str, Any], str]] | None = None,
    family_notes: Sequence[str] = (),
) -> Table:
    """Table 1: one row per model, columns grouped by unit, each number `mean ± se` over images.

    `extra` adds columns title -> (format, {model: value}, note), e.g. the original study's numbers.
    `family_notes`: how each family's score is computed (`pml_ops.density.families.notes`).
    """
    extra = extra or {}
    columns = ["model", "objective / observation"]
    columns += [column_title(group, title) for group, _, title, _ in COLUMNS]
    for title in extra:  # beside the last column of its unit group ("[unit] ...")
        same_unit = [i for i, column in enumerate(columns) if column.split("]")[0] == title.split("]")[0]]
        columns.insert(same_unit[-1] + 1 if same_unit else len(columns), title)
    cells = [_row_cells(row, extra) for row in rows]
    notes = _column_notes(rows, family_notes)
    notes.update({title: note for title, (_, _, note) in extra.items()})
    formats = {title: spec for title, (spec, _, _) in extra.items()}
    return Table(caption=caption, columns=columns, rows=cells, notes=notes, formats=formats)


def normalised_models(rows: list[dict[str, Any]]) -> str:
    """Which models are normalised densities (exact or bounded bits/dim) and which are not."""
    normalised = [row for row in rows if row.get("normalised")]
    exact = [row["model"] for row in normalised if row.get("bits_per_dim_estimate") == "exact"]
    bounds = [row["model"] for row in normalised if row["model"] not in exact]
    others = [row["model"] for row in rows if not row.get("normalised")]
    kinds = ((exact, "exact"), (bounds, "bounds"))
    parts = [f"{', '.join(names)} ({kind})" for names, kind in kinds if names]
    text = f"Normalised densities: {' and '.join(parts)}" if parts else "No model is a normalised density"
    if others:
        verbs = "is not, and has" if len(others) == 1 else "are not, and have"
        text += f"; {', '.join(others)} {verbs} no bits/dim"
    return text + "."


def comparison_markdown(rows: list[dict[str, Any]], family_notes: Sequence[str] = ()) -> str:
    """Table 1 as Markdown (the report's renderer), its groups and columns explained below it."""
    groups = (
        "Columns are grouped by unit: **nats/image** (higher is better; the study's unit), "
        "**bits/dim** (lower is better; the one unit in which all normalised densities compare), "
        "**MSE/pixel** (lower is better) and **k-NN accuracy** (higher is better). "
        f"{normalised_models(rows)}\n"
    )
    return groups + "\n" + markdown_table(table1(rows, family_notes=family_notes)) + "\n"
