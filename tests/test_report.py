"""One-page HTML report: self-contained, escaped, with the right figures and tables."""

from __future__ import annotations

import base64
import re
from types import SimpleNamespace

import geopandas as gpd
import pandas as pd
import shapely
from click.testing import CliRunner

from gapmap.cli import main
from gapmap.report import render_report, write_report

from .conftest import UTM38, X0, Y0
from .test_maps import IMG, SCRIPT, incidents_frame, strips_analysis, strips_frames


def _images(page: str) -> list[bytes]:
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]+)"', page)
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    return [base64.b64decode(s.split(",", 1)[1]) for s in srcs]


def test_report_is_self_contained(tmp_path):
    out = write_report(strips_analysis(), tmp_path / "r" / "report.html")
    page = out.read_text(encoding="utf-8")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "default-src 'none'" in page
    imgs = _images(page)
    assert len(imgs) == 1 and imgs[0][:8] == b"\x89PNG\r\n\x1a\n"  # the map only
    assert "Incidents by" not in page


def test_summary_and_corridor_table():
    res = strips_analysis()
    page = render_report(res, dpi=60)
    # Headline cards and summary from the analysis: 84 of 100 km, longest 45 km.
    assert "84.0 km" in page and "84.0%" in page and "45.0 km" in page and "100.0 km" in page
    rows = re.findall(r"<tr><td class=\"t\">(C\d+)</td>(.*?)</tr>", page, flags=re.S)
    # Rows in rank order (longest first); ids by place along the seam.
    assert [r[0] for r in rows] == res.corridors.sort_values("rank")["corridor_id"].tolist()
    assert sorted(r[0] for r in rows) == ["C1", "C2", "C3"]
    first = re.findall(r"<td>([^<]*)</td>", rows[0][1])
    assert first[0] == "45.01" and first[2] == "20.00"  # length, mean width (km)
    assert "illustrative layout" in page  # the zones' note is shown
    assert "Side B</dt><dd>federal = isf, pmf" in page


def test_monthly_chart_from_incidents():
    from gapmap.hotspots import monthly_counts
    from gapmap.incidents import incident_metrics

    inc = incidents_frame(80)
    # The report draws the counts it is given (computed from the assigned incidents).
    counts = monthly_counts(incident_metrics(strips_analysis(), inc).incidents)
    page = render_report(strips_analysis(), incidents=inc, monthly=counts, dpi=60)
    assert "Incidents by month" in page
    imgs = _images(page)
    assert len(imgs) == 2 and all(i[:4] == b"\x89PNG" for i in imgs)
    # A given monthly table is used as it is.
    monthly = pd.DataFrame({"total": [3, 0, 5]},
                           index=pd.DatetimeIndex(["2021-01-01", "2021-02-01", "2021-03-01"],
                                                  name="month"))
    page2 = render_report(strips_analysis(), monthly=monthly, dpi=60)
    assert len(_images(page2)) == 2 and "Incidents by month" in page2


def test_hostile_strings_escaped():
    res = strips_analysis(hostile=True)
    page = render_report(res, incidents=incidents_frame(30, hostile=True), title=SCRIPT,
                         dpi=60)
    assert SCRIPT not in page and IMG not in page and IMG.lower() not in page
    assert "<script" not in page
    assert "<title>&lt;script&gt;window.__pwned=2&lt;/script&gt;</title>" in page
    assert "illustrative layout, not an assessment &lt;script&gt;" in page


def test_placement_section():
    sites = gpd.GeoDataFrame({"rank": [1, 2], "name": ["s1", IMG], "gain_km": [10.0, 4.5],
                              "range_km": [5.0, 5.0]},
                             geometry=[shapely.Point(X0 + 20e3, Y0 + 80e3),
                                       shapely.Point(X0 + 20e3, Y0 + 30e3)], crs=UTM38)
    placement = SimpleNamespace(sites=sites, k=2, unguarded_before_km=84.03,
                                unguarded_after_km=69.5, guarantee="proven optimal")
    page = render_report(strips_analysis(), placement=placement, dpi=60)
    assert "2 new post(s): unguarded seam 84.0 km → 69.5 km" in page
    assert "(proven optimal)" in page
    assert page.count("<tr><td class=\"t\">") >= 3 + 2  # corridors + sites
    assert "&lt;img src=x" in page and IMG not in page


def test_report_command(tmp_path):
    zones, area, posts, _ = strips_frames()
    zones.to_file(tmp_path / "zones.geojson")
    area.to_file(tmp_path / "area.geojson")
    posts.to_file(tmp_path / "posts.geojson")
    out = tmp_path / "report.html"
    r = CliRunner().invoke(main, [
        "report", "--zones", str(tmp_path / "zones.geojson"), "--side-a", "krg=peshmerga",
        "--side-b", "federal=isf,pmf", "--study-area", str(tmp_path / "area.geojson"),
        "--posts", str(tmp_path / "posts.geojson"), "--out", str(out), "--title", "Strips"])
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert "<h1>Strips</h1>" in page and "84.0 km" in page
    assert "--title" in CliRunner().invoke(main, ["report", "--help"]).output


def test_unknown_report_format_is_refused(tmp_path):
    import pytest

    from gapmap import InputError

    with pytest.raises(InputError, match=r"unknown page format \.pdf"):
        write_report(strips_analysis(), tmp_path / "report.pdf")
    assert list(tmp_path.iterdir()) == []


def test_sources_period_and_file_names_only(tmp_path):
    from gapmap.sources import Source

    from .payloads import assert_no_live_markup, assert_not_evaluated, hostile
    from .test_maps import incidents_frame, strips_analysis

    res = strips_analysis()
    srcs = [Source("zones", hostile("zsource"), hostile("zlicence"), date="2017-10-31"),
            Source("incidents", "UCDP GED", "CC BY 4.0", date="2020")]
    page = render_report(res, incidents=incidents_frame(20), sources=srcs)
    assert_not_evaluated(page)
    assert_no_live_markup(page)
    assert "<script" not in page.lower().replace("&lt;script", "")
    assert "UCDP GED (CC BY 4.0), 2020" in page
    assert "<dt>Control layer date</dt><dd>2017-10-31</dd>" in page
    assert "<dt>Incident period</dt><dd>2020-01-" in page
    assert "@page { size: A4" in page
    assert str(tmp_path) not in page and "/" not in page.split("<dt>Inputs</dt><dd>")[1][:60] \
        if "<dt>Inputs</dt>" in page else True


def test_report_prints_on_one_a4_page(tmp_path):
    """Printed by headless Chromium to PDF; its pages counted with pypdf."""
    import subprocess

    import pypdf

    from .chromium import CHROMIUM
    from .test_maps import incidents_frame, strips_analysis

    html = tmp_path / "r.html"
    write_report(strips_analysis(), html, incidents=incidents_frame(40), dpi=100)
    pdf = tmp_path / "r.pdf"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--no-pdf-header-footer", f"--print-to-pdf={pdf}", html.as_uri()],
                   capture_output=True, timeout=120, check=False)
    reader = pypdf.PdfReader(pdf)
    assert len(reader.pages) == 1
    w, h = float(reader.pages[0].mediabox.width), float(reader.pages[0].mediabox.height)
    assert (round(w / 72 * 25.4), round(h / 72 * 25.4)) == (210, 297)  # A4
