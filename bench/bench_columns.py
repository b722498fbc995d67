"""Column benchmarks: DataFrame and Arrow columns against numpy arrays and the
conversions users needed before (issue 13). bench/columns_table.py prints the
same comparison as one table, with the memory measurement.

Groups: columns (1M 16-character ids, 100 nodes), partition.
"""

import numpy as np
import pytest

import ringhash
from conftest import BATCH, SLOW_BATCH, record
from peers import node_names

pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")
pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def ring():
    return ringhash.HashRing(node_names(100))


@pytest.fixture(scope="module")
def ids(str_keys):
    return str_keys


INPUTS = {
    "numpy S16": lambda keys: np.array(keys, dtype="S16"),
    "pyarrow utf8": lambda keys: pa.array(keys),
    "pyarrow large_utf8": lambda keys: pa.array(keys, pa.large_utf8()),
    "pyarrow utf8_view": lambda keys: pa.array(keys, pa.string_view()),
    "polars str": pl.Series,
    "pandas str": lambda keys: pd.Series(keys, dtype="string[pyarrow]"),
    "numpy StringDType": lambda keys: np.array(keys, dtype=np.dtypes.StringDType()),
    "pyarrow dictionary (10,000 distinct)": lambda keys: pa.array(
        [keys[i % 10_000] for i in range(len(keys))]
    ).dictionary_encode(),
}


@pytest.mark.benchmark(group="columns")
@pytest.mark.parametrize("kind", list(INPUTS))
def test_ringhash_columns(benchmark, ring, ids, kind):
    keys = INPUTS[kind](ids)
    record(benchmark, "ringhash" if kind == "numpy S16" else f"ringhash ({kind})", len(ids))
    out = benchmark(ring.lookup, keys)
    assert out.shape == (len(ids),)


CONVERSIONS = {
    "pyarrow .to_pylist()": lambda keys: pa.array(keys).to_pylist,
    "polars .to_list()": lambda keys: pl.Series(keys).to_list,
    "pandas .tolist()": lambda keys: pd.Series(keys, dtype="string[pyarrow]").tolist,
}


@pytest.mark.benchmark(group="columns")
@pytest.mark.parametrize("kind", list(CONVERSIONS))
def test_converted_columns(benchmark, ring, ids, kind):
    n = min(len(ids), SLOW_BATCH)
    convert = CONVERSIONS[kind](ids[:n])
    record(benchmark, f"before: {kind} then lookup", n)
    benchmark(lambda: ring.lookup(convert()))


@pytest.mark.benchmark(group="partition")
def test_ringhash_lookup_for_partition(benchmark, ring, u64_keys):
    record(benchmark, "ringhash", len(u64_keys))
    benchmark(ring.lookup, u64_keys)


@pytest.mark.benchmark(group="partition")
def test_ringhash_partition(benchmark, ring, u64_keys):
    record(benchmark, "ringhash partition (lookup + counting sort)", len(u64_keys))
    order, offsets = benchmark(ring.partition, u64_keys)
    assert offsets[-1] == len(u64_keys) == BATCH


@pytest.mark.benchmark(group="partition")
def test_numpy_argsort_partition(benchmark, ring, u64_keys):
    record(benchmark, "lookup + np.argsort(stable) + np.bincount", len(u64_keys))

    def argsort_partition():
        owner = ring.lookup(u64_keys)
        return np.argsort(owner, kind="stable"), np.bincount(owner, minlength=100)

    benchmark(argsort_partition)
