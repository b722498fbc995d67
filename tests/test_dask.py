"""The Dask example (docs/examples/dask_owners.py) on a real LocalCluster of two
worker processes: every row's owner equals a single-process lookup."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

pytest.importorskip("pyarrow", reason="pyarrow (a test extra) is not installed")
pytest.importorskip("dask.dataframe", reason="dask[dataframe] (a test extra) is not installed")
distributed = pytest.importorskip("dask.distributed", reason="dask.distributed is not installed")

from ringhash import HashRing  # noqa: E402

EXAMPLE = pathlib.Path(__file__).parent.parent / "docs" / "examples" / "dask_owners.py"


def load_example():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("dask_owners", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(240)
def test_owner_column_on_a_local_cluster(tmp_path):
    example = load_example()
    ring = HashRing({f"cache-{i}": 1.0 + (i % 3) for i in range(8)})
    paths = example.write_example_files(tmp_path, files=3, rows=5_000)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        table = example.owners_with_dask(client, paths, ring)
        assert len(client.scheduler_info()["workers"]) == 2
    assert len(table) == 15_000
    assert sorted(table["key"]) == [f"user:{i:08d}" for i in range(15_000)]
    assert table["owner"].tolist() == ring.get_many(table["key"].tolist())
