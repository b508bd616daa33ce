"""One-page HTML report: self-contained, escaped, with the right figures and tables."""

from __future__ import annotations

import base64
import dataclasses
import re
from types import SimpleNamespace

import geopandas as gpd
import pandas as pd
import pytest
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
    inputs = '<dt class="noprint">Inputs</dt><dd class="noprint">'
    assert str(tmp_path) not in page
    if inputs in page:  # the scene's layers are in memory: no file names to list
        assert "/" not in page.split(inputs)[1][:60]


def test_report_prints_on_one_a4_page(tmp_path):
    """Printed by headless Chromium to PDF; its pages counted with pypdf."""
    import subprocess

    import pypdf

    from .chromium import CHROMIUM
    from .test_maps import incidents_frame, strips_analysis

    from gapmap.hotspots import monthly_counts

    from .test_maps import exposure_pieces

    html = tmp_path / "r.html"
    # The fullest page: ranges on every headline figure, a by-area table longer than the
    # printed page keeps, four proposed posts, road exposure and the incidents chart.
    res = strips_analysis()
    inc = incidents_frame(40)
    write_report(res, html, incidents=inc, dpi=100, monthly=monthly_counts(inc),
                 uncertainty=_uncertainty(res.summary), by_area=_breakdown(slabs=12),
                 placement=_four_sites(),
                 exposure=SimpleNamespace(pieces=exposure_pieces(), summary={"hours": 3.0}),
                 exposure_origin="Jebel Hamrin crest")
    pdf = tmp_path / "r.pdf"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--no-pdf-header-footer", f"--print-to-pdf={pdf}", html.as_uri()],
                   capture_output=True, timeout=120, check=False)
    reader = pypdf.PdfReader(pdf)
    assert len(reader.pages) == 1
    w, h = float(reader.pages[0].mediabox.width), float(reader.pages[0].mediabox.height)
    assert (round(w / 72 * 25.4), round(h / 72 * 25.4)) == (210, 297)  # A4


def _four_sites():
    """Four proposed posts named as placement names them, 8 km range and 15 m high each."""
    sites = gpd.GeoDataFrame(
        {"rank": [1, 2, 3, 4], "name": [f"near Daquq, {k} km NE" for k in (4, 12, 23, 31)],
         "gain_km": [16.4, 14.5, 14.3, 13.9], "range_km": [8.0] * 4, "height_m": [15.0] * 4},
        geometry=[shapely.Point(X0 + 20e3, Y0 + 20e3 * k) for k in (1, 2, 3, 4)], crs=UTM38)
    return SimpleNamespace(sites=sites, k=4, unguarded_before_km=84.03,
                           unguarded_after_km=30.0, guarantee="proven optimal")


def test_road_exposure_block_and_map():
    from .test_maps import exposure_pieces

    res = strips_analysis()
    exposure = SimpleNamespace(pieces=exposure_pieces(),
                               summary={"hours": 3.0, "posts": 2, "off_dem_km": 0.0})
    page = render_report(res, exposure=exposure, exposure_origin="Hamrin " + SCRIPT, dpi=40)
    block = page.split("<h2>Road exposure</h2>")[1].split("</dl>")[0]
    # The four 10 km pieces of the scene (7.5 km for the last), by hand: exposed 10, reachable
    # 10 + 10, seen 10 + 10, road 37.5.
    for key, value in (("Road", "37.5 km"), ("Reachable in 3 h on foot", "20.0 km"),
                       ("Seen by a post", "20.0 km"), ("Exposed", "10.0 km")):
        assert f"<dt>{key}</dt><dd>{value}</dd>" in block, key
    import html

    assert f"<dt>From</dt><dd>Hamrin {html.escape(SCRIPT)}</dd>" in block
    assert SCRIPT not in page
    assert "seen by none of the 2 posts" in page
    # The map image is another one with the exposure drawn on it.
    plain = render_report(res, dpi=40)
    assert "Road exposure" not in plain
    assert _images(page)[0] != _images(plain)[0]
    # The summary's figures win over the pieces' sums (a result read back from its files).
    exposure.summary.update(exposed_km=9.87, road_km=40.0)
    page = render_report(res, exposure=exposure, dpi=40)
    assert "<dt>Exposed</dt><dd>9.9 km</dd>" in page and "<dt>Road</dt><dd>40.0 km</dd>" in page
    assert "<dt>From</dt>" not in page  # no origin named


def test_sites_common_range_said_once():
    page = render_report(strips_analysis(), placement=_four_sites(), dpi=40)
    assert "Each: 8 km range, 15 m high." in page
    assert '<th class="noprint">Range (km)</th>' in page
    assert '<td class="t">near Daquq, 4 km NE</td>' in page


def _uncertainty(summary: dict, n_draws: int = 50, shift_km: float = 0.0):
    """A hand-made uncertainty run around ``summary``: p05 = 0.9·base, p95 = 1.1·base."""
    import geopandas as gpd

    from gapmap.uncertainty import Uncertainty

    names = ["seam_length_km", "unguarded_length_km", "unguarded_share", "corridors",
             "longest_corridor_km", "gap_area_km2"]
    base = [float(summary[n]) for n in names]
    base[1] += shift_km
    table = pd.DataFrame({"p05": [0.9 * b for b in base], "p50": base,
                          "p95": [1.1 * b for b in base], "mean": base, "base": base},
                         index=pd.Index(names, name="field"))
    draws = pd.DataFrame({"unguarded_length_km": [base[1]] * n_draws})
    seam = gpd.GeoDataFrame({"seam_id": [1, 1], "along_km": [0.0, 50.0],
                             "unguarded_base": [True, False], "p_unguarded": [0.9, 0.1]},
                            geometry=[shapely.Point(X0 + 20e3, Y0),
                                      shapely.Point(X0 + 20e3, Y0 + 50e3)], crs=UTM38)
    return Uncertainty(table=table, p_unguarded=seam, draws=draws)


def _slabs(n: int, names=None) -> gpd.GeoDataFrame:
    """The strips' study area cut into ``n`` horizontal slabs named ``names`` (area 0, 1, …)."""
    edges = [Y0 + 100e3 * i / n for i in range(n + 1)]
    return gpd.GeoDataFrame(
        {"ADM1_EN": names or [f"area {i}" for i in range(n)]}, crs=UTM38,
        geometry=[shapely.box(X0 - 20e3, a, X0 + 60e3, b) for a, b in zip(edges, edges[1:])])


def _breakdown(slabs: int = 2, names=None, incidents=None):
    from gapmap.by_area import breakdown

    res = strips_analysis()
    if incidents is not None:
        from gapmap.incidents import incident_metrics, with_incidents

        res = with_incidents(res, incident_metrics(res, incidents))
    return breakdown(res, _slabs(slabs, names), "ADM1_EN")


def test_headline_figures_show_their_90_percent_range():
    res = strips_analysis()
    page = render_report(res, uncertainty=_uncertainty(res.summary), dpi=40)
    # 84.03 km unguarded: 0.9× and 1.1× are 75.6 and 92.4 km; 84.0% of the seam: 75.6–92.4%.
    assert "<dt>Unguarded length</dt><dd>84.0 km (90%: 75.6–92.4 km)</dd>" in page
    assert "<dt>Seam length</dt><dd>100.0 km (90%: 90.0–110.0 km)</dd>" in page
    cards = re.findall(r'<div class="card">(.*?)</div></div>', page, flags=re.S)
    assert '<div class="r">90%: 75.6–92.4 km' in cards[0]
    assert '<div class="r">90%: 75.6–92.4%' in cards[1]
    assert '<div class="r">90%: 40.5–49.5 km' in cards[2]  # longest corridor, 45.0 km
    assert "over 50 perturbed copies" in page and "other inputs" not in page
    # Without a run, no range anywhere.
    plain = render_report(res, dpi=40)
    assert "90%:" not in plain and "perturbed copies" not in plain
    # The table alone (as read back from uncertainty.csv) gives the same ranges.
    only_table = render_report(res, uncertainty=_uncertainty(res.summary).table, dpi=40)
    assert "84.0 km (90%: 75.6–92.4 km)" in only_table
    # A run on other inputs is flagged (its base is not this analysis's figure).
    other = render_report(res, uncertainty=_uncertainty(res.summary, shift_km=10.0), dpi=40)
    assert "the run was made on other inputs" in other and "(94.0 km)" in other


def test_by_area_table_rows():
    table = _breakdown(slabs=2, names=["south", "north"])
    page = render_report(strips_analysis(), by_area=table, dpi=40)
    assert "<h2>By ADM1_EN" in page
    section = page.split('<table class="areas">')[1].split("</table>")[0]
    rows = re.findall(r'<tr(?: class="more")?><td class="t">([^<]*)</td>(.*?)</tr>', section)
    # Most unguarded seam first, every area listed, values as the breakdown measured them.
    want = table.sort_values("unguarded_length_km", ascending=False)
    assert [r[0] for r in rows] == want["ADM1_EN"].tolist()
    for (name, rest), (_, w) in zip(rows, want.iterrows()):
        cells = re.findall(r"<td>([^<]*)</td>", rest)
        assert cells[:2] == [f"{w.seam_length_km:.1f}", f"{w.unguarded_length_km:.1f}"]
        assert cells[2] == f"{100 * w.unguarded_share:.1f}%"
    # The rows add up to the headline: 84.0 km unguarded over 100 km of seam.
    total = sum(float(re.findall(r"<td>([^<]*)</td>", r[1])[1]) for r in rows)
    assert abs(total - 84.0) < 0.15
    assert 'class="more"' not in section  # two areas: nothing hidden in print


def test_by_area_print_keeps_the_largest_and_counts_incidents():
    inc = incidents_frame(60)
    table = _breakdown(slabs=10, incidents=inc)
    page = render_report(strips_analysis(), by_area=table, dpi=40)
    section = page.split('<table class="areas">')[1].split("</table>")[0]
    assert "<th>Incidents</th>" in section
    rows = re.findall(r'<tr( class="more")?><td class="t">([^<]*)</td>', section)
    assert len(rows) == 10
    # The first 8 (most unguarded) print, the others are screen-only.
    assert [bool(m) for m, _ in rows] == [False] * 8 + [True] * 2
    assert "the 8 with the most unguarded seam of 10" in page
    cells = re.findall(r"<td>([^<]*)</td></tr>", section)
    assert sum(int(c) for c in cells) == int(table["incidents"].sum()) > 0


def test_ranges_and_areas_escape_hostile_text():
    from .payloads import assert_no_live_markup, assert_not_evaluated, hostile

    names = [hostile("area1"), hostile("area2")]
    table = _breakdown(slabs=2, names=names).rename(columns={"ADM1_EN": hostile("field")})
    res = strips_analysis(hostile=True)
    page = render_report(res, uncertainty=_uncertainty(res.summary), by_area=table, dpi=40)
    assert_not_evaluated(page)
    assert_no_live_markup(page)
    assert "<script" not in page
    assert "area1 ZQ{{7*7}}QZ" in page and "&lt;img src=x onerror=" in page


def test_report_command_with_uncertainty_and_by(tmp_path):
    from gapmap.uncertainty import write_uncertainty

    zones, _, posts, _ = strips_frames()
    zones.to_file(tmp_path / "zones.geojson")
    _slabs(2, ["south", "north"]).to_file(tmp_path / "area.geojson")
    posts.to_file(tmp_path / "posts.geojson")
    res = strips_analysis()
    run = _uncertainty(res.summary)
    # As gapmap uncertainty --by ADM1_EN writes it: per-area ranges in by_area.csv.
    table = _breakdown(slabs=2, names=["south", "north"])
    table["unguarded_length_km_p05"] = table["unguarded_length_km"] - 3.0
    table["unguarded_length_km_p95"] = table["unguarded_length_km"] + 2.0
    run = dataclasses.replace(run, by_area=table)
    write_uncertainty(run, tmp_path / "unc")
    base = ["report", "--zones", str(tmp_path / "zones.geojson"), "--side-a", "krg=peshmerga",
            "--side-b", "federal=isf,pmf", "--study-area", str(tmp_path / "area.geojson"),
            "--posts", str(tmp_path / "posts.geojson")]
    out = tmp_path / "report.html"
    r = CliRunner().invoke(main, base + ["--out", str(out), "--uncertainty",
                                         str(tmp_path / "unc"), "--by", "ADM1_EN"])
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert "84.0 km (90%: 75.6–92.4 km)" in page and "over 50 perturbed copies" in page
    section = page.split('<table class="areas">')[1].split("</table>")[0]
    assert "<th>90% range (km)</th>" in section
    for _, w in table.iterrows():
        lo, hi = w.unguarded_length_km - 3.0, w.unguarded_length_km + 2.0
        assert f'<td class="t">{w.ADM1_EN}</td>' in section
        assert f"<td>{lo:.1f}–{hi:.1f}</td>" in section
    helptext = CliRunner().invoke(main, ["report", "--help"]).output
    assert "--uncertainty DIR" in helptext and "--by FIELD" in helptext
    # Bad input: one line, exit 2, nothing written.
    for extra, words in ((["--uncertainty", str(tmp_path)], "uncertainty.csv: not found"),
                         (["--by", "ADM9"], "ADM9")):
        bad = tmp_path / "bad.html"
        r = CliRunner().invoke(main, base + ["--out", str(bad)] + extra)
        assert r.exit_code == 2, r.output
        assert words in r.output and "Traceback" not in r.output
        assert not bad.exists()


@pytest.mark.slow
def test_demo_figure_and_report_draw_its_exposure(demo):
    """The demo computes its road exposure before drawing: the report states the km of an
    exposure it wrote, and its figure draws the exposed road in the strong colour."""
    import json

    import numpy as np
    from matplotlib.colors import to_rgb
    from matplotlib.image import imread

    from gapmap.style import EXPOSURE_CLASSES, fmt

    out, _ = demo
    page = (out / "report.html").read_text(encoding="utf-8")
    block = page.split("<h2>Road exposure</h2>")[1].split("</dl>")[0]
    docs = [json.loads(p.read_text()) for p in sorted((out / "exposure").rglob("exposure.json"))]
    assert any(f"<dt>Exposed</dt><dd>{fmt(d['exposed_km'], 1)} km</dd>" in block
               and f"<dt>Road</dt><dd>{fmt(d['road_km'], 1)} km</dd>" in block for d in docs)
    assert "<dt>From</dt><dd>Jebel Hamrin" in block
    img = imread(out / "map.png")[..., :3]
    strong = (np.abs(img - np.asarray(to_rgb(EXPOSURE_CLASSES[0][1]))) < 12 / 255).all(axis=-1)
    assert strong.sum() > 500


@pytest.mark.slow
def test_demo_report_inlines_its_map_png(demo):
    """The demo draws the map figure once: the report's map is map.png, byte for byte."""
    out, _ = demo
    page = (out / "report.html").read_text(encoding="utf-8")
    assert _images(page)[0] == (out / "map.png").read_bytes()


def test_report_inlines_a_given_map_png_without_drawing(tmp_path, monkeypatch):
    """A caller's PNG (a path or its bytes) is inlined as it is, and the map is not drawn."""
    import gapmap.report as report
    from matplotlib.figure import Figure

    png = tmp_path / "map.png"
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    from gapmap.figures import save_figure

    save_figure(fig, png)

    def no_drawing(*args, **kwargs):
        raise AssertionError("the report drew the map again")

    monkeypatch.setattr(report, "plot_map", no_drawing)
    for given in (png, png.read_bytes()):
        page = render_report(strips_analysis(), map_png=given, dpi=60)
        assert _images(page)[0] == png.read_bytes()
    out = write_report(strips_analysis(), tmp_path / "r.html", map_png=png)
    assert _images(out.read_text(encoding="utf-8"))[0] == png.read_bytes()


def test_report_refuses_a_map_that_is_not_png(tmp_path):
    from gapmap.errors import InputError

    gif = tmp_path / "map.gif"
    gif.write_bytes(b"GIF89a" + bytes(40))
    with pytest.raises(InputError, match=r"map\.gif: map_png: not a PNG image"):
        write_report(strips_analysis(), tmp_path / "r.html", map_png=gif)
    assert not (tmp_path / "r.html").exists()
