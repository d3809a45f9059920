"""The study report: a spec of sections, tables and figures, rendered to self-contained HTML
and a Markdown twin."""

from pml_ops.report.environment import collect_environment
from pml_ops.report.render import render_html, render_markdown, write_report
from pml_ops.report.spec import Figure, Report, Section, Table

__all__ = [
    "Figure",
    "Report",
    "Section",
    "Table",
    "collect_environment",
    "render_html",
    "render_markdown",
    "write_report",
]
