"""Incidents measured in dask-geopandas partitions on Dask workers give the same table, the same
per-corridor figures and the same summary as one in-process call, on a local cluster reached
by its address (as a remote one) and on one started for the call; `gapmap metrics --scheduler`
writes the same files as the in-process run."""

from __future__ import annotations

import json
import os

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Transformer

from gapmap import analyze, parse_side
from gapmap import partitions as partitions_mod
from gapmap.cli import main
from gapmap.errors import GapmapError
from gapmap.incidents import incident_metrics
from gapmap.partitions import map_partitions, partition_count, use_partitions

from . import scenes
from .conftest import UTM38, X0, Y0
from .test_cli import SIDES, files  # noqa: F401 - the fixture is used by name

KRG, FED = parse_side("krg=peshmerga"), parse_side("federal=isf,pmf")
TO_LL = Transformer.from_crs(UTM38, 4326, always_xy=True)


@pytest.fixture(scope="module")
def scene():
    """The strips (seam at x = X0 + 20 km, 20 km wide) with one post splitting the seam into a
    southern and a northern corridor."""
    return analyze(scenes.strips(), KRG, FED, posts=scenes.posts([(20, 50)], forces=["isf"]),
                   study_area=scenes.strips_area())


def _events(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    """``n`` events in lon/lat (so each partition projects its own), some beyond the study
    area, some coarse, with dates and fatalities; a non-default index."""
    rng = np.random.default_rng(seed)
    dx = rng.uniform(-20e3, 60e3, n)
    dy = rng.uniform(-5e3, 105e3, n)
    lon, lat = TO_LL.transform(X0 + dx, Y0 + dy)
    return gpd.GeoDataFrame(
        {"date": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 700, n), "D"),
         "fatalities": rng.integers(0, 5, n).astype(float),
         "coarse": rng.random(n) < 0.05},
        geometry=shapely.points(lon, lat), crs=4326, index=np.arange(n) * 3 + 7)


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(pd.DataFrame(a.incidents), pd.DataFrame(b.incidents))
    pd.testing.assert_frame_equal(a.corridors, b.corridors)
    pd.testing.assert_frame_equal(a.minor, b.minor)
    assert a.summary == b.summary


def _count_calls(monkeypatch) -> list:
    calls = []

    def counted(table, *args, **kw):
        calls.append((len(table), kw["partition_events"]))
        return map_partitions(table, *args, **kw)
    monkeypatch.setattr(partitions_mod, "map_partitions", counted)
    return calls


def test_partition_sizes():
    assert partition_count(1_000, 300) == 4
    assert partition_count(900, 300) == 3
    assert use_partitions(301, 2, None, 300) and not use_partitions(300, 2, None, 300)
    assert not use_partitions(10_000, 1, None, 300)  # no cluster asked for
    assert use_partitions(301, None, "tcp://h:8786", 300)


def test_partitions_on_a_scheduler_equal_the_in_process_run(scene, cluster, monkeypatch):
    events = _events(3_000)
    serial = incident_metrics(scene, events)
    calls = _count_calls(monkeypatch)
    split = incident_metrics(scene, events, scheduler=cluster.scheduler_address,
                             partition_events=400)
    assert calls == [(3_000, 400)]  # really partitioned: 8 partitions
    _same(split, serial)
    # The scene is not degenerate: both corridors get events, some are unassigned, some coarse.
    assert (serial.corridors["incidents"] > 50).all()
    s = serial.summary
    assert 0 < s["incidents_assigned"] < s["incidents_used"] < len(events)
    assert s["incidents_outside_study_area"] > 0
    # And the index of the caller's table is kept.
    assert split.incidents.index.tolist() == events.index.tolist()


def test_hand_computed_events_in_partitions_of_two(scene, cluster):
    """The hand-computed events of tests/test_incidents.py, two per partition."""
    pts = [(20, 20), (13, 30), (25, 80), (6, 70), (3, 60), (20, 52), (-15, 50), (70, 50)]
    xy = np.array([(X0 + dx * 1e3, Y0 + dy * 1e3) for dx, dy in pts])
    events = gpd.GeoDataFrame(geometry=shapely.points(xy), crs=UTM38)
    m = incident_metrics(scene, events, scheduler=cluster.scheduler_address, partition_events=2)
    t = m.incidents
    assert t["distance_km"].iloc[:7].to_numpy() == pytest.approx([0, 7, 5, 14, 17, 0, 35],
                                                                abs=1e-3)
    assert t["assigned"].tolist() == [True, True, True, True, False, True, False, False]
    assert m.summary["incidents_in_corridors"] == 4
    assert (m.summary["incidents_total"], m.summary["incidents_outside_study_area"]) == (7, 1)


def test_local_cluster_started_for_the_call(scene, monkeypatch):
    events = _events(1_200, seed=3)
    calls = _count_calls(monkeypatch)
    split = incident_metrics(scene, events, workers=2, partition_events=500, include_coarse=True)
    assert calls == [(1_200, 500)]
    _same(split, incident_metrics(scene, events, include_coarse=True))


def test_below_one_partition_runs_in_process(scene, monkeypatch):
    calls = _count_calls(monkeypatch)
    incident_metrics(scene, _events(200), workers=2, partition_events=500)
    assert calls == []


def _die(part, shared):
    os._exit(1)  # the worker process dies under every partition


def test_worker_dying_under_every_partition_fails_cleanly(cluster):
    table = gpd.GeoDataFrame({"a": np.arange(10)}, geometry=shapely.points(np.zeros((10, 2))))
    meta = pd.DataFrame({"a": pd.Series(dtype=int)})
    with pytest.raises(GapmapError, match="workers running it died"):
        map_partitions(table, _die, None, meta, scheduler=cluster.scheduler_address,
                       partition_events=5)


def test_metrics_cli_with_scheduler_writes_the_same_files(files, cluster, tmp_path,  # noqa: F811
                                                          monkeypatch):
    events = _events(1_500, seed=5)
    csv = tmp_path / "events.csv"
    lonlat = shapely.get_coordinates(events.geometry.values)
    pd.DataFrame({"latitude": lonlat[:, 1], "longitude": lonlat[:, 0],
                  "event_date": events["date"].dt.strftime("%Y-%m-%d"),
                  "fatalities": events["fatalities"]}).to_csv(csv, index=False)
    # One partition's worth is 500,000 events; a smaller threshold keeps the test small.
    monkeypatch.setattr(partitions_mod, "PARTITION_EVENTS", 400)
    calls = _count_calls(monkeypatch)
    args = ["metrics", "--zones", str(files["zones"]), *SIDES, "--posts", str(files["posts"]),
            "--study-area", str(files["area"]), "--study-area-layer", "area",
            "--incidents", str(csv)]
    out = {}
    for name, extra in (("serial", []), ("dask", ["--scheduler", cluster.scheduler_address])):
        res = CliRunner().invoke(main, [*args, *extra, "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        out[name] = tmp_path / name
    assert calls == [(1_500, 400)]  # only the --scheduler run partitioned
    summary = [json.loads((out[k] / "summary.json").read_text())["pairs"]
               for k in ("serial", "dask")]
    assert summary[0] == summary[1] and summary[0][0]["incidents_assigned"] > 100
    assert (out["serial"] / "corridors.csv").read_text() == \
        (out["dask"] / "corridors.csv").read_text()
