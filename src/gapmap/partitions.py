"""Per-row work over partitions of a large point table, on Dask (dask-geopandas).

Millions of events (ACLED's global file) are measured one partition at a time: the table is
cut into partitions of :data:`PARTITION_EVENTS` rows with :func:`dask_geopandas.from_geopandas`
(in row order: no spatial sort, so the results come back in the order of the rows), a function
runs on each partition (``GeoDataFrame.map_partitions``) on the workers of a Dask cluster, and
the partitions' results are concatenated here. What every partition needs (``shared``: the seam
index, the corridors …) enters the graph once and is sent to each worker once, not once per
partition.

The clusters are those of :mod:`gapmap.engine` (the same ``--workers`` / ``--scheduler`` as
``gapmap series``): ``workers=N`` starts a :class:`distributed.LocalCluster` of ``N``
single-threaded processes for the call, ``scheduler=ADDRESS`` uses an existing one. A worker
that dies under a partition is replaced and the partition runs again (up to twice on a local
cluster); beyond that the call fails with :class:`~gapmap.errors.GapmapError` and returns
nothing.

Memory: a worker holds ``shared`` and one partition with its result at a time; the process
calling :func:`map_partitions` holds the whole table and the whole result (see docs/scale.md,
"Incidents in partitions", for the measured figures).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import pandas as pd

from .errors import GapmapError, InputError

__all__ = ["PARTITION_EVENTS", "partition_count", "use_partitions", "map_partitions"]

log = logging.getLogger(__name__)

#: Rows per partition, and the table size from which ``--workers``/``--scheduler`` partition
#: at all. Below it a cluster costs more than it saves: starting a local cluster of two
#: processes took about 6 s where assigning 500,000 events in process took about 5 s (on a
#: loaded 2-core machine). A worker with one partition of 500,000 events peaked at about
#: 0.6 GB (docs/scale.md, "Incidents in partitions").
PARTITION_EVENTS = 500_000


def partition_count(n: int, partition_events: int = PARTITION_EVENTS) -> int:
    """Partitions of at most ``partition_events`` rows for ``n`` rows (at least 1).

    >>> partition_count(10_000_000), partition_count(1), partition_count(0)
    (20, 1, 1)
    """
    if partition_events < 1:
        raise InputError("partition_events", None, f"must be at least 1, got {partition_events}",
                         "give the rows per partition as a positive integer")
    return max(math.ceil(n / partition_events), 1)


def use_partitions(n: int, workers: int | None, scheduler: str | None,
                   partition_events: int = PARTITION_EVENTS) -> bool:
    """Whether ``n`` rows are worth partitioning: a cluster was asked for (``workers`` above
    1 or a ``scheduler``) and there are more rows than one partition holds.

    >>> use_partitions(2_000_000, 2, None), use_partitions(2_000_000, 1, None)
    (True, False)
    >>> use_partitions(100_000, None, "tcp://host:8786")
    False
    """
    if workers is not None and int(workers) < 1:
        raise InputError("--workers", None, f"must be at least 1, got {workers}",
                         "give --workers 1 to run in this process, or more for a local cluster")
    asked = scheduler is not None or (workers is not None and int(workers) > 1)
    return asked and n > partition_events


def map_partitions(table: gpd.GeoDataFrame, fn: Callable[[gpd.GeoDataFrame, Any], pd.DataFrame],
                   shared: Any, meta: pd.DataFrame, *, workers: int | None = None,
                   scheduler: str | None = None, partition_events: int = PARTITION_EVENTS,
                   retries: int = 2) -> pd.DataFrame:
    """``fn(partition, shared)`` on each partition of ``table``, on Dask; the results
    concatenated in the order of ``table``'s rows.

    Parameters
    ----------
    table
        The rows (any index: the result carries a fresh ``RangeIndex``, row for row).
    fn
        A module-level function of ``(partition, shared)`` returning one row per row of the
        partition, with the columns and dtypes of ``meta``.
    shared
        What every partition needs; sent to each worker once.
    meta
        An empty frame with the result's columns and dtypes.
    workers, scheduler
        As for :func:`gapmap.engine.run_tasks`: a local cluster of ``workers`` processes
        (default: one per core), or an existing scheduler's address.
    partition_events
        Rows per partition.
    retries
        How many more times a partition runs after a worker died under it (local cluster).

    Raises
    ------
    InputError
        The scheduler cannot be reached, or ``workers`` is below 1.
    GapmapError
        Workers kept dying under a partition (nothing is returned).
    """
    import dask
    import dask_geopandas
    from distributed.scheduler import KilledWorker

    from .engine import _local_client, _quiet_dask, _remote_client, default_workers

    n = len(table)
    parts = partition_count(n, partition_events)
    frame = table.reset_index(drop=True)
    # sort=False: the partitions are consecutive rows, so concatenating their results keeps
    # the order of the table (from_geopandas would otherwise sort by the index).
    ddf = dask_geopandas.from_geopandas(frame, npartitions=parts, sort=False)
    # One task holding ``shared``, named here so that dask does not hash the whole object to
    # name it; each worker fetches its result once.
    shared_d = dask.delayed(shared, name=f"partition-shared-{uuid.uuid4().hex}", traverse=False)
    out = ddf.map_partitions(fn, shared_d, meta=meta, align_dataframes=False)
    log.info("%d rows in %d partitions of up to %d", n, ddf.npartitions, partition_events)
    if scheduler is None:
        nw = default_workers() if workers is None else int(workers)
        if nw < 1:
            raise InputError("--workers", None, f"must be at least 1, got {workers}",
                             "give --workers 1 to run in this process, or more for a local "
                             "cluster")
        context = _local_client(min(nw, ddf.npartitions), retries)
    else:
        context = _remote_client(scheduler)
    with _quiet_dask(), context as client:
        future = client.compute(out)
        try:
            result = future.result()
        except KilledWorker as exc:
            raise GapmapError(
                f"a partition of {partition_events:,} rows failed: the workers running it died "
                f"({type(exc).__name__}); nothing was written — check the workers' memory, or "
                "rerun with --workers 1") from None
        finally:
            client.cancel([future])
    if len(result) != n:  # a function that drops rows would misalign every later row
        raise GapmapError(f"the partitions returned {len(result)} rows for {n}")
    return result.reset_index(drop=True)
