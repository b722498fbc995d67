"""`ringhash route`: streaming key<TAB>node lines through the batch path."""

import io
import subprocess
import sys

import pytest

from ringhash import HashRing
from ringhash.cli import main, route


def test_route_matches_the_ring(tmp_path):
    keys = [f"user:{i}" for i in range(5000)] + ["naïve", "日本", ""]
    src = tmp_path / "keys.txt"
    src.write_text("\n".join(keys) + "\n", encoding="utf-8")
    out = tmp_path / "out.tsv"
    assert (
        main(
            [
                "route",
                "--nodes",
                "a,b,c",
                "--weights",
                "1,2,0.5",
                "--vnodes",
                "64",
                str(src),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    ring = HashRing({"a": 1, "b": 2, "c": 0.5}, vnodes=64)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines == [f"{k}\t{ring.get(k)}" for k in keys]


def test_route_streams_small_batches_and_crlf():
    ring = HashRing(["x", "y"], hash="crc32")
    data = b"".join(b"k%d\r\n" % i for i in range(1000)) + b"last-without-newline"
    out = io.BytesIO()
    import ringhash.cli as cli

    old = cli.BATCH_BYTES
    cli.BATCH_BYTES = 7  # force many partial reads and lines split across chunks
    try:
        n = route(ring, io.BytesIO(data), out)
    finally:
        cli.BATCH_BYTES = old
    keys = [f"k{i}" for i in range(1000)] + ["last-without-newline"]
    assert n == len(keys)
    assert out.getvalue().decode().splitlines() == [f"{k}\t{ring.get(k)}" for k in keys]


def test_python_dash_m_and_stdin():
    proc = subprocess.run(
        [sys.executable, "-m", "ringhash", "route", "--nodes", "a,b,c", "--hash", "crc32"],
        input=b"alpha\nbeta\n",
        capture_output=True,
        check=True,
    )
    ring = HashRing(["a", "b", "c"], hash="crc32")
    assert proc.stdout.decode().splitlines() == [
        f"alpha\t{ring.get('alpha')}",
        f"beta\t{ring.get('beta')}",
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["route", "--nodes", ""],
        ["route", "--nodes", "a,b", "--weights", "1"],
        ["route", "--nodes", "a", "--weights", "x"],
        ["route", "--nodes", "a", "--vnodes", "0"],
        ["route", "--nodes", "a,a"],
        ["route", "--nodes", "a", "--hash", "crc32", "--seed", "3"],
    ],
)
def test_bad_arguments_exit_with_usage_error(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err
