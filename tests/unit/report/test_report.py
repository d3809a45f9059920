"""The report renderer: self-contained HTML and a Markdown twin from a synthetic spec."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pydantic import ValidationError

from pml_ops.core.errors import ReportError
from pml_ops.report import Figure, Report, Section, Table, collect_environment, render_html, write_report
from pml_ops.report.render import format_cell
from tests.helpers.report_fixtures import MODELS, synthetic_report


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = _Collector()
    collector.feed(text)
    return collector.tags


def test_html_is_self_contained_with_every_figure_embedded(tmp_path: Path):
    report = synthetic_report(tmp_path)
    text = render_html(report, tmp_path)
    tags = _tags(text)
    images = [attrs for tag, attrs in tags if tag == "img"]
    assert len(images) == 3
    expected = [tmp_path / "figures" / name for name in ("latent.png", "grid.png", "gp/posterior.png")]
    for attrs, path in zip(images, expected, strict=True):
        prefix = "data:image/png;base64,"
        assert attrs["src"].startswith(prefix)
        assert base64.b64decode(attrs["src"][len(prefix) :]) == path.read_bytes()
    # Nothing is fetched from elsewhere: no linked stylesheets, scripts or remote sources.
    assert not [tag for tag, _ in tags if tag in ("link", "script", "iframe")]
    assert not re.search(r"""(src|href)="(?!data:|#)""", text)
    assert "<style>" in text


def test_html_tables_markdown_and_escaping(tmp_path: Path):
    text = render_html(synthetic_report(tmp_path), tmp_path)
    table = text.split("<table>")[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + len(MODELS)  # header + one row per model
    assert "<td>VAE</td>" in table and '<td class="num">-143.5</td>' in table
    assert '<td class="num">—</td>' in table  # the missing study number
    assert '<td class="num">0.0300</td>' in table  # the column's own format
    assert "<strong>2-D</strong>" in text and "<li>trained on 60000 images</li>" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert 'id="environment"' in text and 'id="stage-wall-times"' in text
    assert "<td>sum of the stages</td>" in text and '<td class="num">64.2</td>' in text


def test_markdown_twin_links_figures_relative_to_itself(tmp_path: Path):
    report = synthetic_report(tmp_path)
    out = tmp_path / "reports"
    write_report(report, out / "report.html", out / "report.md", base_dir=tmp_path)
    markdown = (out / "report.md").read_text()
    assert "![Test set in latent space](../figures/latent.png)" in markdown
    assert "![Posterior \\| density](../figures/gp/posterior.png)" in markdown
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (out / link).is_file()
    assert "| model | test ELBO | study ELBO | MSE |" in markdown
    assert "|---|---:|---:|---:|" in markdown
    assert "| VAE | -140 | -150 | 0.0100 |" in markdown
    assert "| PPCA | -147 | — | 0.0300 |" in markdown
    assert "- *study ELBO*: the number reported by the original study" in markdown
    assert "## Stage wall times" in markdown and "| sum of the stages | 64.2 |" in markdown
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.md"]  # no temp files


@pytest.mark.parametrize(
    ("value", "spec", "text"),
    [(None, None, "—"), (-140.23456, None, "-140.2"), (0.0012345, None, "0.001234"),
     (123456.7, None, "123456.7"), (3, None, "3"), (True, None, "True"), (0.5, ".1%", "50.0%"),
     ("GMM", None, "GMM")],
)  # fmt: skip
def test_cell_formatting(value, spec, text):
    assert format_cell(value, spec) == text


def test_missing_or_non_png_figure_is_a_clear_error(tmp_path: Path):
    missing = Report(
        title="r", sections=[Section(title="s", figures=[Figure(path=Path("no.png"), caption="c")])]
    )
    with pytest.raises(ReportError, match=r"figure 'c': .*no\.png not found"):
        render_html(missing, tmp_path)
    (tmp_path / "fake.png").write_text("not a png")
    fake = Report(
        title="r", sections=[Section(title="s", figures=[Figure(path=Path("fake.png"), caption="c")])]
    )
    with pytest.raises(ReportError, match="is not a PNG file"):
        write_report(fake, tmp_path / "r.html", tmp_path / "r.md", base_dir=tmp_path)
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "r.md").exists()


def test_table_spec_rejects_unknown_columns():
    with pytest.raises(ValidationError, match=r"unknown column\(s\) \['ELBO'\]"):
        Table(caption="t", columns=["model"], rows=[{"model": "VAE", "ELBO": 1.0}])
    with pytest.raises(ValidationError, match="unknown column 'MSE'"):
        Table(caption="t", columns=["model"], rows=[], notes={"MSE": "x"})


def test_spec_loads_from_plain_data(tmp_path: Path):
    spec = {
        "title": "t",
        "sections": [{"title": "s", "tables": [{"caption": "c", "columns": ["a"], "rows": [{"a": 1}]}]}],
    }
    report = Report.model_validate(spec)
    assert '<td class="num">1</td>' in render_html(report, tmp_path)
    with pytest.raises(ValidationError, match="figures_x"):
        Report.model_validate({"title": "t", "sections": [{"title": "s", "figures_x": []}]})


def test_environment_names_versions_device_commit_and_data(tmp_path: Path):
    (tmp_path / "dvc.lock").write_text(
        "stages:\n  prepare:\n    outs:\n    - path: data/mnist.npz\n      md5: f00d\n"
    )
    environment = collect_environment(tmp_path)
    for name in ("python", "torch", "arviz", "scikit-learn", "mlflow", "dvc", "optuna", "numpy"):
        assert environment[name] not in ("", "not installed"), name
    assert environment["device"].startswith(("CPU", "CUDA"))
    assert environment["git commit"] == "unknown"  # tmp_path is not a git repository
    assert environment["data (data/mnist.npz) md5"] == "f00d"
