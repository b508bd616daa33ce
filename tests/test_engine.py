"""run_tasks: the same results in-process, on a local cluster and on an existing scheduler."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from gapmap.engine import run_tasks
from gapmap.errors import GapmapError, InputError


def _square_plus(shared, item):
    return item * item + shared["offset"]


class Counted:
    """Appends a line to a file each time it is pickled: counts how often it is shipped."""

    def __init__(self, log: str, value: int) -> None:
        self.log, self.value = log, value

    def __reduce__(self):
        with open(self.log, "a") as fh:
            fh.write("x\n")
        return (Counted, (self.log, self.value))


def _with_counted(shared, item):
    return shared.value + item


def _die_once(shared, item):
    marker = Path(shared) / f"died-{item}"
    if item == 2 and not marker.exists():
        marker.write_text("1")
        os._exit(1)  # the worker process dies under the task
    return item * 10


def _always_die(shared, item):
    if item == 1:
        os._exit(1)
    return item


def _bad_input(shared, item):
    if item == 3:
        raise InputError("day3.geojson", "date", "no date", "rename it")
    return item


def test_serial_in_item_order_with_progress():
    seen = []
    out = run_tasks(_square_plus, [3, 1, 2], shared={"offset": 1}, workers=1,
                    progress=lambda done, total: seen.append((done, total)))
    assert out == [10, 2, 5]
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_serial_does_not_touch_dask(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # importing it would now fail
    assert run_tasks(_square_plus, [2], shared={"offset": 0}, workers=1) == [4]


def test_local_cluster_matches_serial_and_ships_shared_once(tmp_path):
    log = tmp_path / "pickled.txt"
    items = list(range(8))
    seen = []
    out = run_tasks(_with_counted, items, shared=Counted(str(log), 100), workers=2,
                    progress=lambda done, total: seen.append(done))
    assert out == [100 + i for i in items]
    assert seen == list(range(1, 9))
    # Scattered to the workers (a few serialisations), not shipped with each of the 8 tasks.
    assert len(log.read_text().splitlines()) < len(items)


def test_scheduler_address_matches_serial(cluster):
    items = [5, 4, 3, 2, 1]
    serial = run_tasks(_square_plus, items, shared={"offset": 7}, workers=1)
    remote = run_tasks(_square_plus, items, shared={"offset": 7},
                       scheduler=cluster.scheduler_address)
    assert remote == serial == [32, 23, 16, 11, 8]


def test_input_error_in_a_task_is_raised_unchanged(cluster):
    with pytest.raises(InputError, match="day3.geojson: date: no date"):
        run_tasks(_bad_input, [1, 2, 3], scheduler=cluster.scheduler_address)


def test_worker_dying_mid_task_is_retried(cluster, tmp_path):
    out = run_tasks(_die_once, [1, 2, 3], shared=str(tmp_path),
                    scheduler=cluster.scheduler_address)
    assert out == [10, 20, 30]
    assert (tmp_path / "died-2").exists()  # the worker really died once


def test_worker_dying_every_time_fails_cleanly(cluster):
    with pytest.raises(GapmapError, match="died|dying"):
        run_tasks(_always_die, [0, 1, 2], scheduler=cluster.scheduler_address)


def test_unreachable_scheduler_is_input_error_within_30_s(monkeypatch):
    from gapmap import engine

    assert engine.CONNECT_TIMEOUT_S <= 30  # what a user waits at most
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT_S", 2.0)  # keep the test short
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    t0 = time.monotonic()
    with pytest.raises(InputError, match=address.replace(".", r"\.")):
        run_tasks(_square_plus, [1], shared={"offset": 0}, scheduler=address)
    assert time.monotonic() - t0 < 30


def test_workers_below_one_is_input_error():
    with pytest.raises(InputError, match="--workers"):
        run_tasks(_square_plus, [1], workers=0)
