"""Static map: legend, scale bar true on the ground, north arrow, print resolution."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.image import imread
from matplotlib.patches import Rectangle
from PIL import Image
from pyproj import Geod, Transformer

from gapmap import InputError
from gapmap.cli import main
from gapmap.figures import PRINT_DPI, plot_map, save_figure, scale_bar_km

from .conftest import UTM38
from .test_maps import SCRIPT, incidents_frame, strips_analysis, strips_frames

GEOD = Geod(ellps="WGS84")


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]


def test_legend_colourbar_and_labels():
    res = strips_analysis()
    fig = plot_map(res, incidents=incidents_frame(30))
    ax = fig.axes[0]
    legend = next(a.get_legend() for a in fig.axes if a.get_legend() is not None)
    labels = [t.get_text() for t in legend.get_texts()]
    for want in ("peshmerga (krg)", "isf (federal)", "pmf (federal)", "Seam (median line)",
                 "Unguarded corridor", "Gap region", "Posts and ranges", "Incidents (30)"):
        assert want in labels
    assert legend.get_title().get_text() == "Illustrative data"
    assert ax.get_legend() is legend  # inside the map frame
    r = fig.canvas.get_renderer()
    frame, box = ax.get_window_extent(r), legend.get_window_extent(r)
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    every = fig.axes + [c for a in fig.axes for c in a.child_axes]
    cbar = [a for a in every if a.get_xlabel() == "Corridor length (km)"]
    assert len(cbar) == 1
    # A 0-based scale up to a round length at or above the longest corridor (45 km).
    lo, hi = cbar[0].get_xlim()
    assert lo == pytest.approx(0.0) and hi == pytest.approx(50.0)
    # The title sits above the map, clear of the colour bar.
    title = next(t for t in fig.texts if t.get_text() == "krg – federal: unguarded corridors")
    assert title.get_window_extent(r).y0 > cbar[0].get_window_extent(r).y1
    assert title.get_window_extent(r).y0 > frame.y1
    texts = _texts(fig)
    assert "illustrative layout" in texts and "N" in texts
    assert {"C1", "C2", "C3"} <= set(texts)
    assert any(t.startswith("Unguarded 84.0 km (84.0% of the seam)") for t in texts)


def test_scale_bar_is_true_on_the_ground():
    res = strips_analysis()
    fig = plot_map(res)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_zorder() == 20]
    assert len(bars) == 2
    x0 = min(b.get_x() for b in bars)
    x1 = max(b.get_x() + b.get_width() for b in bars)
    y = bars[0].get_y()
    label = [t for t in ax.texts if t.get_text().endswith(" km")][0].get_text()
    km = float(label.split()[0])
    assert km == 10.0  # a fifth of the ~86 km frame, rounded down to 1-2-5
    t = Transformer.from_crs(UTM38, 4326, always_xy=True)
    lon0, lat0 = t.transform(x0, y)
    lon1, lat1 = t.transform(x1, y)
    ground_km = GEOD.inv(lon0, lat0, lon1, lat1)[2] / 1000
    assert ground_km == pytest.approx(km, rel=1e-3)
    assert scale_bar_km(100_000) == 20.0 and scale_bar_km(3_000) == 0.5


def test_north_arrow_points_to_true_north():
    res = strips_analysis()
    fig = plot_map(res)
    ax = fig.axes[0]
    arrow = [c for c in ax.get_children() if c.__class__.__name__ == "Annotation"
             and c.arrow_patch is not None][0]
    tx, ty = arrow.xyann  # the tail, in points from the head: the angle is true on the page
    angle = math.degrees(math.atan2(-tx, -ty))  # clockwise from grid north
    # Reference: the direction of a meridian at the frame centre, in grid coordinates.
    cx, cy = np.mean(ax.get_xlim()), np.mean(ax.get_ylim())
    t = Transformer.from_crs(UTM38, 4326, always_xy=True)
    lon, lat = t.transform(cx, cy)
    back = Transformer.from_crs(4326, UTM38, always_xy=True)
    nx, ny = back.transform(lon, lat + 0.05)
    expected = math.degrees(math.atan2(nx - cx, ny - cy))
    # West of the zone's central meridian the meridians lean east, towards the pole.
    assert 0.3 < expected < 1.0
    assert angle == pytest.approx(expected, abs=0.05)


def test_print_resolution_and_formats(tmp_path, caplog):
    fig = plot_map(strips_analysis(), figsize=(4, 4))
    out = save_figure(fig, tmp_path / "map.png")
    img = imread(out)
    assert img.shape[:2] == (4 * PRINT_DPI, 4 * PRINT_DPI)
    with Image.open(out) as im:
        assert im.info["dpi"][0] == pytest.approx(PRINT_DPI, abs=0.5)
    low = save_figure(fig, tmp_path / "low.png", dpi=72)  # raised to print quality
    assert imread(low).shape[0] == 4 * PRINT_DPI and "raised" in caplog.text
    pdf = save_figure(fig, tmp_path / "map.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(InputError, match="format"):
        save_figure(fig, tmp_path / "map.docx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["low.png", "map.pdf", "map.png"]


def test_data_strings_are_drawn_literally():
    res = strips_analysis(hostile=True)
    fig = plot_map(res, title="Cost $5 and $10 " + SCRIPT)
    ax = fig.axes[0]
    assert r"Cost \$5 and \$10 " + SCRIPT in [t.get_text() for t in fig.texts]
    fig.canvas.draw() if fig.canvas else None
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()  # renders without mathtext errors


def test_figure_command(tmp_path):
    zones, area, posts, _ = strips_frames()
    zones.to_file(tmp_path / "zones.geojson")
    area.to_file(tmp_path / "area.geojson")
    out = tmp_path / "fig.png"
    r = CliRunner().invoke(main, [
        "figure", "--zones", str(tmp_path / "zones.geojson"), "--side-a", "krg=peshmerga",
        "--side-b", "federal=isf,pmf", "--study-area", str(tmp_path / "area.geojson"),
        "--out", str(out), "--width-in", "3"])
    assert r.exit_code == 0, r.output
    h, w = imread(out).shape[:2]
    assert w == 600 and h > 600  # the strips are taller than wide: the page follows
    low = CliRunner().invoke(main, ["figure", "--out", str(out), "--dpi", "100"])
    assert low.exit_code == 2 and "--dpi" in low.output


@pytest.mark.parametrize("size", [(0, 4), (-3, 4), (float("nan"), 4), (4, float("inf"))])
def test_unusable_figure_sizes_are_refused(size):
    with pytest.raises(InputError, match="positive finite"):
        plot_map(strips_analysis(), figsize=size)


def test_huge_figures_are_refused_before_drawing(tmp_path):
    # 3,000 in at 200 dpi: 600,000 px a side, 1.44 TB of canvas.
    with pytest.raises(InputError, match=r"600,000 × 600,000 px .*1\.4 TB"):
        plot_map(strips_analysis(), figsize=(3000, 3000))
    fig = plot_map(strips_analysis(), figsize=(10, 10))  # 2,000 px a side: drawable
    with pytest.raises(InputError, match=r"12,000 × 12,000 px"):
        save_figure(fig, tmp_path / "big.png", dpi=1200)
    with pytest.raises(InputError, match="no suffix"):
        save_figure(fig, tmp_path / "map")
    assert list(tmp_path.iterdir()) == []
    zones, area, _, _ = strips_frames()
    zones.to_file(tmp_path / "zones.geojson")
    r = CliRunner().invoke(main, [
        "figure", "--zones", str(tmp_path / "zones.geojson"), "--side-a", "krg=peshmerga",
        "--side-b", "federal=isf,pmf", "--out", str(tmp_path / "f.png"), "--width-in", "3000"])
    assert r.exit_code == 2 and "600,000 × 600,000 px" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zones.geojson"]


def test_one_corridor_is_drawn_strong_without_a_colour_bar():
    import dataclasses

    res = strips_analysis()
    one = dataclasses.replace(res, corridors=res.corridors.iloc[[0]])
    fig = plot_map(one)
    every = fig.axes + [c for a in fig.axes for c in a.child_axes]
    assert not [a for a in every if a.get_xlabel() == "Corridor length (km)"]
    legend = fig.axes[0].get_legend()
    km = one.corridors["length_km"].iloc[0]
    assert f"Unguarded corridor ({km:.1f} km)" in [t.get_text() for t in legend.get_texts()]


def test_towns_areas_water_and_sources(tmp_path):
    import geopandas as gpd
    import shapely

    from gapmap.sources import Source

    from .conftest import X0, Y0

    res = strips_analysis()
    # Twelve towns on a tight grid: labels that fit must not overlap; the biggest comes first.
    pts = [(X0 + 12e3 + 2.5e3 * i, Y0 + 30e3 + 2e3 * j) for i in range(4) for j in range(3)]
    towns = gpd.GeoDataFrame({"name": [f"Town{k}" for k in range(12)],
                              "population": [1e6] + [1e4] * 11},
                             geometry=[shapely.Point(p) for p in pts], crs=UTM38)
    areas = gpd.GeoDataFrame({"name": ["North", "South"]}, crs=UTM38, geometry=[
        shapely.box(X0 - 5e3, Y0 + 50e3, X0 + 45e3, Y0 + 100e3),
        shapely.box(X0 - 5e3, Y0, X0 + 45e3, Y0 + 50e3)])
    water = type("W", (), {"rivers": gpd.GeoDataFrame(geometry=[shapely.LineString(
        [(X0, Y0 + 5e3), (X0 + 40e3, Y0 + 8e3)])], crs=UTM38), "lakes": None})()
    srcs = [Source("incidents", "UCDP GED", "CC BY 4.0"),
            Source("dem", "NOAA GLOBE", note="terrain below 1 km is modelled")]
    fig = plot_map(res, places=towns, areas=areas, water=water, sources=srcs)
    ax = fig.axes[0]
    r = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text().startswith("Town")]
    assert "Town0" in [t.get_text() for t in labels] and len(labels) >= 4
    boxes = [t.get_window_extent(r) for t in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert {"NORTH", "SOUTH"} <= {t.get_text() for t in ax.texts}
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Rivers" in legend and "Towns" in legend and "Lakes" not in legend
    foot = [t.get_text() for t in fig.texts]
    assert "Sources: UCDP GED (CC BY 4.0) · NOAA GLOBE" in foot
    assert "Terrain: terrain below 1 km is modelled" in foot
    out = save_figure(fig, tmp_path / "m.png")
    assert imread(out).shape[1] == 8 * PRINT_DPI


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def _lines_of_colour(ax, color: str) -> list[np.ndarray]:
    """The segments of every line collection drawn in ``color``."""
    from matplotlib.colors import to_rgba

    want = np.asarray(to_rgba(color))
    out = []
    for c in ax.collections:
        cols = np.asarray(c.get_edgecolor() if hasattr(c, "get_segments") else [])
        if len(cols) and hasattr(c, "get_segments") and np.allclose(cols[0], want):
            out += [np.asarray(s) for s in c.get_segments()]
    return out


def test_exposure_drawn_in_one_strong_colour_with_its_km():
    from types import SimpleNamespace

    from gapmap.style import EXPOSURE_CLASSES

    from .conftest import X0, Y0
    from .test_maps import exposure_pieces

    res = strips_analysis()
    # Four 10 km pieces along x = X0 + 20 km (lengths given by hand): exposed 10, reachable
    # and seen 10, seen out of reach 10, neither 7.5.
    fig = plot_map(res, exposure=SimpleNamespace(pieces=exposure_pieces(),
                                                 summary={"hours": 3.0}))
    legend = _legend_texts(fig)
    assert "Exposed road (3 h on foot, unseen): 10.0 km" in legend
    assert "Road in reach, seen: 10.0 km" in legend
    assert "Road out of reach: 17.5 km" in legend
    ax = fig.axes[0]
    strong = _lines_of_colour(ax, EXPOSURE_CLASSES[0][1])
    assert len(strong) == 1  # the exposed piece only, from Y0 to Y0 + 10 km
    xy = strong[0]
    assert np.allclose(xy[:, 0], X0 + 20e3) and np.allclose(sorted(xy[[0, -1], 1]),
                                                             [Y0, Y0 + 10e3])
    # The legend keeps clear of the exposed road.
    r = fig.canvas.get_renderer()
    box = ax.get_legend().get_window_extent(r)
    px = ax.transData.transform(xy)
    assert not ((px[:, 0] > box.x0) & (px[:, 0] < box.x1) & (px[:, 1] > box.y0)
                & (px[:, 1] < box.y1)).any()
    # The pieces alone (as read back from exposure.gpkg): the km are their length_km sums.
    legend = _legend_texts(plot_map(res, exposure=exposure_pieces()))
    assert "Exposed road (in reach on foot, unseen): 10.0 km" in legend
    # No exposure, no exposure rows.
    assert not [t for t in _legend_texts(plot_map(res)) if "road" in t.lower()]


def test_exposure_on_flat_ground_shows_the_hand_computed_km():
    """A road through flat ground walked from its west end for 2 h: exposed is the first
    2 h × 5.0367 km/h of it (no post), in geodesic km."""
    import geopandas as gpd
    import shapely
    from affine import Affine

    from gapmap.exposure import road_exposure
    from gapmap.routes import TOBLER_FLAT_KMH
    from gapmap.terrain import Dem

    from .conftest import X0, Y0

    flat = Dem(np.zeros((100, 400), np.float32), Affine(100, 0, X0, 0, -100, Y0 + 55e3), UTM38)
    y = Y0 + 50e3 + 50  # a cell centre row: the walk runs along a move direction
    road = gpd.GeoDataFrame({"name": ["R1"]}, crs=UTM38, geometry=[
        shapely.LineString([(X0 + 50, y), (X0 + 39_950, y)])])
    base = gpd.GeoDataFrame(geometry=[shapely.Point(X0 + 50, y)], crs=UTM38)
    ex = road_exposure(road, base, flat, hours=2.0)
    t = Transformer.from_crs(UTM38, 4326, always_xy=True)
    reach_m = 2.0 * TOBLER_FLAT_KMH * 1000
    (lon0, lon1), (lat0, lat1) = t.transform([X0 + 50, X0 + 50 + reach_m], [y, y])
    want_km = GEOD.inv(lon0, lat0, lon1, lat1)[2] / 1000
    assert ex.summary["exposed_km"] == pytest.approx(want_km, rel=1e-3)
    (lon0, lon1), (lat0, lat1) = t.transform([X0 + 50, X0 + 39_950], [y, y])
    road_km = GEOD.inv(lon0, lat0, lon1, lat1)[2] / 1000
    fig = plot_map(strips_analysis(), exposure=ex)
    legend = _legend_texts(fig)
    assert f"Exposed road (2 h on foot, unseen): {want_km:.1f} km" in legend
    assert f"Road out of reach: {road_km - want_km:.1f} km" in legend


def test_proposed_sites_are_labelled_with_their_names():
    import geopandas as gpd
    import shapely

    from .conftest import X0, Y0

    res = strips_analysis()
    sites = gpd.GeoDataFrame(
        {"rank": [1, 2, 3], "name": ["near Daquq, 4 km NE", None, "Cost $5 " + SCRIPT],
         "location": ["near Daquq, 4 km NE", "at Tuz Khurmatu", ""]}, crs=UTM38,
        geometry=[shapely.Point(X0 + 20e3, Y0 + 70e3), shapely.Point(X0 + 20e3, Y0 + 40e3),
                  shapely.Point(X0 + 20e3, Y0 + 15e3)])
    fig = plot_map(res, placement=sites)
    ax = fig.axes[0]
    texts = {t.get_text(): t for t in ax.texts}
    # The name; a site without one shows its location; data text is drawn literally.
    for want in ("near Daquq, 4 km NE", "at Tuz Khurmatu", r"Cost \$5 " + SCRIPT):
        assert want in texts, want
    r = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(r) for t in ax.texts if t.get_text()]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    # Each label sits next to its star (within 40 px).
    for want, (x, y) in (("near Daquq, 4 km NE", (X0 + 20e3, Y0 + 70e3)),
                         ("at Tuz Khurmatu", (X0 + 20e3, Y0 + 40e3))):
        px, py = ax.transData.transform((x, y))
        b = texts[want].get_window_extent(r)
        gap = math.hypot(max(b.x0 - px, 0, px - b.x1), max(b.y0 - py, 0, py - b.y1))
        assert gap < 40, (want, gap)
