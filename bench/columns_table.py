"""Issue 13's table, rerun: ``ring.lookup(x)`` for every common column type.

1M 16-character ids (and uint64 keys), a 100-node ring, each input passed as is
and, where a user would otherwise convert it, through the conversion that was
needed before (the baseline). Then ``partition`` against numpy's argsort +
bincount, and the peak memory of a 10M-row string lookup. Times are the best of
several rounds, interleaved so that every row sees the same machine state.

Run: ``python bench/columns_table.py`` (needs pyarrow, polars and pandas:
``pip install '.[bench]'``). ``--keys N`` changes the batch; ``--smoke`` runs
it tiny (CI).
"""

from __future__ import annotations

import argparse
import gc
import os
import tracemalloc

import numpy as np

import ringhash
from ringhash.compare import _best as best  # the same best-of-rounds timing


def ids(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{x:016x}" for x in rng.integers(0, 2**63, n)]


def measure(rows: dict[str, object], rounds: int, n: int) -> dict[str, float]:
    """ns per key of each row's function; rows interleaved round by round."""
    out: dict[str, list[float]] = {name: [] for name in rows}
    for fn in rows.values():
        fn()  # warm up (and fail early)
    for _ in range(rounds):
        for name, fn in rows.items():
            out[name].append(best(fn, 1))
    return {name: min(ts) / n * 1e9 for name, ts in out.items()}


def rss_peak_reset() -> None:
    with open("/proc/self/clear_refs", "w") as f:  # Linux: reset VmHWM to the current RSS
        f.write("5")


def rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def memory_row(ring: ringhash.HashRing, n: int) -> str:
    """Peak memory of ring.lookup(pyarrow utf8 column of n rows): tracemalloc (numpy's
    allocations are traced) and RSS, next to the result's size."""
    import pyarrow as pa

    arr = pa.array(ids(n, seed=3))
    gc.collect()
    tracemalloc.start()
    rss_peak_reset()
    base = rss_kib("VmRSS")
    owners = ring.lookup(arr)
    peak_rss = rss_kib("VmHWM") - base
    _, peak_traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result = owners.nbytes
    return (
        f"| {n:,} utf8 keys ({arr.nbytes / 2**20:.0f} MiB of key data) | result "
        f"{result / 2**20:.1f} MiB | traced peak {peak_traced / 2**20:.1f} MiB | "
        f"RSS growth {peak_rss / 1024:.1f} MiB |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    n = 2_000 if args.smoke else args.keys
    rounds = 2 if args.smoke else args.rounds

    import pandas as pd
    import polars as pl
    import pyarrow as pa

    ring = ringhash.HashRing([f"node-{i}" for i in range(100)])
    keys = ids(n)
    u64 = np.random.default_rng(2).integers(0, 2**63, n).astype(np.uint64)
    s16 = np.array(keys, dtype="S16")
    pa_str = pa.array(keys)
    pl_str = pl.Series(keys)
    pd_str = pd.Series(keys, dtype="str")
    sd = np.array(keys, dtype=np.dtypes.StringDType())
    distinct = ids(10_000, seed=4)
    codes = np.random.default_rng(5).integers(0, 10_000, n)
    pa_dict = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(distinct))
    owners = ring.lookup(u64)
    lookup = ring.lookup

    rows = {
        "numpy uint64": lambda: lookup(u64),
        "numpy S16": lambda: lookup(s16),
        "list[str]": lambda: lookup(keys),
        f"pandas {pd.__version__} Series of str ({pd_str.dtype.storage}-backed)": (
            lambda: lookup(pd_str)
        ),
        "  before: via .tolist()": lambda: lookup(pd_str.tolist()),
        "pyarrow StringArray (utf8)": lambda: lookup(pa_str),
        "pyarrow large_utf8": lambda: lookup(pa_str.cast(pa.large_utf8())),
        "pyarrow utf8_view": lambda: lookup(pa_str.cast(pa.string_view())),
        "  before: via .to_pylist()": lambda: lookup(pa_str.to_pylist()),
        "polars Series (str)": lambda: lookup(pl_str),
        "  before: via .to_list()": lambda: lookup(pl_str.to_list()),
        "numpy StringDType": lambda: lookup(sd),
        "pyarrow dictionary<int32, utf8>, 10,000 distinct": lambda: lookup(pa_dict),
        "pyarrow uint64": lambda: lookup(pa.array(u64)),
        "polars UInt64": lambda: lookup(pl.Series(u64)),
        "pandas uint64 (numpy-backed)": lambda: lookup(pd.Series(u64)),
        "pandas UInt64 (masked)": lambda: lookup(pd.Series(u64, dtype="UInt64")),
        "pyarrow int32": lambda: lookup(pa.array(u64.astype(np.int32))),
        "partition (uint64 keys: lookup + counting sort)": lambda: ring.partition(u64),
        "np.argsort(owner, kind='stable') + np.bincount": lambda: (
            np.argsort(owners, kind="stable"),
            np.bincount(owners, minlength=100),
        ),
    }
    # conversions inside the timed call are what a user pays; keep them for the
    # rows that need one, and build the others' inputs once
    pa_large, pa_view = pa_str.cast(pa.large_utf8()), pa_str.cast(pa.string_view())
    rows["pyarrow large_utf8"] = lambda: lookup(pa_large)
    rows["pyarrow utf8_view"] = lambda: lookup(pa_view)
    pa_u64, pl_u64 = pa.array(u64), pl.Series(u64)
    pd_u64, pd_masked = pd.Series(u64), pd.Series(u64, dtype="UInt64")
    pa_i32 = pa.array(u64.astype(np.int32))
    rows["pyarrow uint64"] = lambda: lookup(pa_u64)
    rows["polars UInt64"] = lambda: lookup(pl_u64)
    rows["pandas uint64 (numpy-backed)"] = lambda: lookup(pd_u64)
    rows["pandas UInt64 (masked)"] = lambda: lookup(pd_masked)
    rows["pyarrow int32"] = lambda: lookup(pa_i32)

    ns = measure(rows, rounds, n)
    print(
        f"{n:,} keys, 100-node ring; ringhash {ringhash.__version__} "
        f"(batch loops: {ringhash._core.SIMD}), numpy {np.__version__}, pyarrow "
        f"{pa.__version__}, polars {pl.__version__}, pandas {pd.__version__}; "
        f"{os.cpu_count()} CPUs\n"
    )
    print("| input | `ring.lookup(x)` | vs numpy S16 | vs numpy uint64 |")
    print("| --- | --- | --- | --- |")
    for name, v in ns.items():
        print(
            f"| {name} | {v:.2f} ns per key | {v / ns['numpy S16']:.2f}x "
            f"| {v / ns['numpy uint64']:.2f}x |"
        )
    extra = ns["partition (uint64 keys: lookup + counting sort)"] - ns["numpy uint64"]
    argsort = ns["np.argsort(owner, kind='stable') + np.bincount"]
    print(
        f"\npartition on top of lookup: {extra:.2f} ns per key; argsort + bincount alone: "
        f"{argsort:.2f} ns per key ({argsort / max(extra, 1e-9):.0f}x the counting sort)\n"
    )
    print(memory_row(ring, 20_000 if args.smoke else 10_000_000))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
