"""Route a table that does not fit on one machine: a Dask DataFrame read from
Parquet gets an ``owner`` column, computed on the workers.

The ring is scattered to every worker once (``broadcast=True``); each partition
arrives as a pandas DataFrame whose Arrow-backed ``key`` column ringhash reads
in place. Run it as a script (a local cluster of two worker processes), or call
``owners_with_dask`` with your own client and files. The test suite runs it
(tests/test_dask.py) and checks every row against a single-process lookup.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import numpy as np

from ringhash import HashRing


def add_owner(part, ring):  # type: ignore[no-untyped-def]
    """One partition (a pandas DataFrame) with an ``owner`` column added."""
    part = part.copy()
    part["owner"] = ring.get_many(part["key"])
    return part


def owners_with_dask(client, paths, ring):  # type: ignore[no-untyped-def]
    """The rows of the Parquet files ``paths`` with their owner, as a pandas DataFrame."""
    import dask.dataframe as dd

    ddf = dd.read_parquet(paths)
    shipped = client.scatter(ring, broadcast=True)  # once per worker, not once per task
    meta = {**ddf.dtypes.to_dict(), "owner": "str"}
    return ddf.map_partitions(add_owner, shipped, meta=meta).compute()


def write_example_files(folder: pathlib.Path, files: int = 4, rows: int = 25_000) -> list[str]:
    """Parquet files of user ids and a value column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = []
    for f in range(files):
        ids = [f"user:{f * rows + i:08d}" for i in range(rows)]
        path = folder / f"part-{f}.parquet"
        pq.write_table(pa.table({"key": ids, "value": np.arange(rows)}), path)
        paths.append(str(path))
    return paths


def main() -> int:
    from dask.distributed import Client, LocalCluster

    ring = HashRing([f"cache-{i}" for i in range(8)])
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_example_files(pathlib.Path(tmp))
        with (
            LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1") as cluster,
            Client(cluster) as client,
        ):
            table = owners_with_dask(client, paths, ring)
    print(table.groupby("owner").size().to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
