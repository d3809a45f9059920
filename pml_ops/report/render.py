"""Render a `Report` to one self-contained HTML file and a Markdown twin.

The HTML embeds every figure as a base64 data URI and carries its CSS inline: it needs no other
file and no network, so it can be mailed, attached to an MLflow run or opened offline. The
Markdown twin links the PNGs by relative path, for reading on GitHub or in an editor.
"""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path

from pml_ops.core.errors import ReportError
from pml_ops.core.io import atomic_path
from pml_ops.report.spec import Cell, Figure, Report, Table

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 70rem; padding: 0 1rem; color: #1b1f24; line-height: 1.45; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
nav ol { columns: 2; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .92rem; }
table { display: block; max-width: 100%; overflow-x: auto; }  /* wide tables scroll, the page does not */
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .4rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafbfc; }
.notes { font-size: .85rem; color: #57606a; margin-top: -.5rem; }
figure { display: inline-block; margin: 1rem 1.5rem 1rem 0; vertical-align: top; }
figure img { max-width: 32rem; height: auto; border: 1px solid #d0d7de; }
figcaption { font-size: .88rem; color: #57606a; max-width: 32rem; }
"""


def format_cell(value: Cell, spec: str | None = None) -> str:
    """A cell as text: `spec` if given, floats to 4 significant digits, None as an em dash."""
    if value is None:
        return "—"
    if spec:
        return format(value, spec)
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def _is_number(value: Cell) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _figure_path(figure: Figure, base_dir: Path) -> Path:
    path = figure.path if figure.path.is_absolute() else base_dir / figure.path
    try:
        head = path.read_bytes()[: len(PNG_SIGNATURE)]
    except OSError:
        raise ReportError(f"figure '{figure.caption}': {path} not found") from None
    if head != PNG_SIGNATURE:
        raise ReportError(f"figure '{figure.caption}': {path} is not a PNG file")
    return path


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


def _markdown_to_html(text: str) -> str:
    from markdown_it import MarkdownIt  # deferred: ~30 ms at import; the compare stage needs no HTML

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def _html_table(table: Table) -> str:
    head = "".join(f'<th scope="col">{html.escape(column)}</th>' for column in table.columns)
    numeric = {column: _numeric_column(table, column) for column in table.columns}
    body = []
    for row in table.rows:
        cells = []
        for column in table.columns:
            value = row.get(column)
            css = ' class="num"' if numeric[column] else ""
            cells.append(f"<td{css}>{html.escape(format_cell(value, table.formats.get(column)))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    parts = [f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"]
    if table.notes:
        notes = "".join(
            f"<li><strong>{html.escape(column)}</strong>: {html.escape(note)}</li>"
            for column, note in table.notes.items()
        )
        parts.append(f'<ul class="notes">{notes}</ul>')
    return "\n".join(parts)


def _html_figure(figure: Figure, base_dir: Path) -> str:
    data = base64.b64encode(_figure_path(figure, base_dir).read_bytes()).decode("ascii")
    caption = html.escape(figure.caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def render_html(report: Report, base_dir: Path) -> str:
    """The whole report as one HTML document with figures embedded."""
    sections = report.all_sections()
    toc = "".join(
        f'<li><a href="#{_anchor(section.title)}">{html.escape(section.title)}</a></li>'
        for section in sections
    )
    body = []
    for section in sections:
        body.append(f'<section id="{_anchor(section.title)}"><h2>{html.escape(section.title)}</h2>')
        if section.text:
            body.append(_markdown_to_html(section.text))
        body.extend(_html_table(table) for table in section.tables)
        body.extend(_html_figure(figure, base_dir) for figure in section.figures)
        body.append("</section>")
    title = html.escape(report.title)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{CSS}</style></head>\n<body><h1>{title}</h1><nav><ol>{toc}</ol></nav>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    """The one Markdown table renderer (the report and the density comparison)."""
    lines = []
    if table.caption:
        lines += [f"**{table.caption}**", ""]
    lines.append("| " + " | ".join(_md_escape(column) for column in table.columns) + " |")
    lines.append("|" + "|".join("---:" if _numeric_column(table, c) else "---" for c in table.columns) + "|")
    for row in table.rows:
        cells = (_md_escape(format_cell(row.get(c), table.formats.get(c))) for c in table.columns)
        lines.append("| " + " | ".join(cells) + " |")
    if table.notes:
        lines.append("")
        lines += [f"- *{column}*: {note}" for column, note in table.notes.items()]
    return "\n".join(lines)


def _numeric_column(table: Table, column: str) -> bool:
    values = [row.get(column) for row in table.rows if row.get(column) is not None]
    return bool(values) and all(_is_number(value) for value in values)


def render_markdown(report: Report, base_dir: Path, out_dir: Path) -> str:
    """The report as Markdown; figures are linked relative to `out_dir` (where the file goes)."""
    parts = [f"# {report.title}", ""]
    for section in report.all_sections():
        parts += [f"## {section.title}", ""]
        if section.text:
            parts += [section.text.strip(), ""]
        for table in section.tables:
            parts += [markdown_table(table), ""]
        for figure in section.figures:
            path = _figure_path(figure, base_dir).resolve()
            link = Path(os.path.relpath(path, out_dir.resolve())).as_posix()
            parts += [f"![{_md_escape(figure.caption)}]({link})", "", f"*{figure.caption}*", ""]
    return "\n".join(parts).rstrip() + "\n"


def write_report(report: Report, html_path: Path, markdown_path: Path, base_dir: Path | None = None) -> None:
    """Write both renderings atomically. Figures resolve against `base_dir` (default: cwd)."""
    base = Path.cwd() if base_dir is None else base_dir
    html_text = render_html(report, base)
    markdown_text = render_markdown(report, base, markdown_path.parent)
    with atomic_path(html_path) as tmp:
        tmp.write_text(html_text, encoding="utf-8")
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(markdown_text, encoding="utf-8")
