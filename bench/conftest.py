"""Shared data for the benchmark suite.

Sizes follow the performance issue: rings of 10, 100 and 1,000 nodes with 160
points each, batches of 1M keys. RINGHASH_BENCH_SMOKE=1 (CI) shrinks batches
so `pytest bench --benchmark-disable` only proves every benchmark still runs.
"""

import os
import random
import string

import numpy as np
import pytest

SMOKE = os.environ.get("RINGHASH_BENCH_SMOKE", "") not in ("", "0")
BATCH = 10_000 if SMOKE else 1_000_000
SLOW_BATCH = 2_000 if SMOKE else 100_000  # peers that route one key per Python call
SINGLE = 1_000 if SMOKE else 20_000
RING_SIZES = [10, 100, 1000]
BATCH_SIZES = [100, 1_000, 10_000] if SMOKE else [100, 10_000, 1_000_000]


def pytest_configure(config):
    config.addinivalue_line("markers", "peer(name): the implementation a benchmark measures")


@pytest.fixture(scope="session")
def u64_keys():
    return np.random.default_rng(7).integers(0, 2**64 - 1, BATCH, dtype=np.uint64, endpoint=True)


@pytest.fixture(scope="session")
def str_keys():
    rng = random.Random(7)
    letters = string.ascii_letters + string.digits
    return ["".join(rng.choices(letters, k=16)) for _ in range(BATCH)]


@pytest.fixture(scope="session")
def nonascii_keys(str_keys):
    return [k[:13] + "é日" for k in str_keys]  # 16 characters, 19 UTF-8 bytes


def record(benchmark, peer, keys, **info):
    """Tag a benchmark for the comparison table: who ran, how many keys per call."""
    benchmark.extra_info.update(peer=peer, keys=keys, **info)


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory):
    """A redis-server of the benchmarks' own on a free loopback port."""
    import shutil
    import socket
    import subprocess
    import time

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("no redis-server binary (apt-get install redis-server)")
    redis = pytest.importorskip("redis")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(tmp_path_factory.mktemp("redis")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(500):
        try:
            redis.Redis(port=port).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.01)
    yield port
    proc.terminate()
    proc.wait(10)
