"""The HTML report as a person sees it: rendered by headless Chromium, images loaded, table
complete, and a screenshot kept under test-artifacts/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from PIL import Image

from pml_ops.report import write_report
from tests.conftest import REPO_ROOT
from tests.helpers.browser import chromium
from tests.helpers.report_fixtures import MODELS, synthetic_report

ARTIFACTS = REPO_ROOT / "test-artifacts"

# Appended to a copy of the report (the report itself carries no script): once the page has
# loaded, record in the DOM whether each image decoded and its natural size.
PROBE = """<script>
window.addEventListener("load", () => {
  for (const img of document.images) {
    img.dataset.loaded = String(img.complete && img.naturalWidth > 0);
    img.dataset.size = img.naturalWidth + "x" + img.naturalHeight;
  }
  document.body.dataset.probed = "yes";
});
</script>"""


def test_chromium_renders_the_report(tmp_path: Path):
    write_report(
        synthetic_report(tmp_path), tmp_path / "report.html", tmp_path / "report.md", base_dir=tmp_path
    )
    probed = tmp_path / "probed.html"
    probed.write_text((tmp_path / "report.html").read_text().replace("</body>", PROBE + "</body>"))

    dom = chromium(probed, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom").stdout
    assert 'data-probed="yes"' in dom, dom[:2000]
    images = re.findall(r"<img [^>]*>", dom)
    assert len(images) == 3
    assert all('data-loaded="true"' in img for img in images), images
    assert [re.search(r'data-size="(\w+)"', img).group(1) for img in images] == ["40x30", "24x24", "32x16"]

    table = dom.split("Table 1:")[1].split("</table>")[0]
    body_rows = table.split("<tbody>")[1].split("</tr>")[:-1]
    assert len(body_rows) == len(MODELS)  # one row per model
    assert [re.search(r"<td[^>]*>([^<]*)</td>", row).group(1) for row in body_rows] == MODELS

    shot = tmp_path / "screenshot.png"
    chromium(
        tmp_path / "report.html", tmp_path / "profile2", "--window-size=1280,1600", f"--screenshot={shot}"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report-screenshot.png")
    with Image.open(shot) as image:
        assert image.size == (1280, 1600)
        colours = {colour for _, colour in image.convert("RGB").getcolors(maxcolors=1 << 20)}
    # The figures' solid colours are on screen: the images were drawn, not just present.
    assert {(200, 30, 30), (30, 30, 200), (30, 160, 30)} <= colours
