"""Real servers on 127.0.0.1 for the tests: start a program on free ports, wait
until it listens, stop it; and the few memcached text-protocol commands the
routing tests need (set through a proxy or client, then find which memcached
holds each key)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import platform
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence

import pytest


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports on 127.0.0.1: every socket stays bound until all are
    picked (one at a time, the kernel may hand the same port out twice)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def need(program: str) -> str:
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin:/sbin")
    if path is None:
        pytest.skip(f"no {program} binary (Debian: apt-get install {program}; .ci/run installs it)")
    return path


#: How this machine's own builds read a plain C char (the proxies' key hashes differ).
X86 = ("x86_64", "amd64", "i386", "i686")
NATIVE_CHAR = "signed" if platform.machine().lower() in X86 else "unsigned"

#: The cross toolchain's aarch64 libc (Debian: libc6-arm64-cross, with gcc-aarch64-linux-gnu).
AARCH64_SYSROOT = pathlib.Path("/usr/aarch64-linux-gnu")


def aarch64(program: str) -> tuple[list[str], pathlib.Path]:
    """Debian's arm64 build of ``program`` (a path under ``$RINGHASH_AARCH64_ROOT``, where
    .ci/run extracts Debian's arm64 packages of nutcracker and libmemcached), run under
    qemu-user: (the command prefix that runs an aarch64 binary, with the root's
    libraries, the root). Skips with the reason where any part is missing."""
    qemu = need("qemu-aarch64")
    if not (AARCH64_SYSROOT / "lib" / "ld-linux-aarch64.so.1").exists():
        pytest.skip(f"no aarch64 libc in {AARCH64_SYSROOT} (Debian: libc6-arm64-cross)")
    root = os.environ.get("RINGHASH_AARCH64_ROOT")
    if not root or not (pathlib.Path(root) / program).exists():
        pytest.skip(
            f"no aarch64 {program} under RINGHASH_AARCH64_ROOT={root!r} (.ci/run unpacks "
            "Debian's arm64 nutcracker and libmemcached there)"
        )
    libs = pathlib.Path(root) / "usr" / "lib" / "aarch64-linux-gnu"
    return [qemu, "-L", str(AARCH64_SYSROOT), "-E", f"LD_LIBRARY_PATH={libs}"], pathlib.Path(root)


#: Where a server listens: a port on 127.0.0.1, a (host, port), or a unix socket's path.
Where = int | tuple[str, int] | str


def connect(where: Where, timeout: float = 10.0) -> socket.socket:
    if isinstance(where, str):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(timeout)
        try:
            sock.connect(where)
        except OSError:
            sock.close()
            raise
        return sock
    return socket.create_connection(
        ("127.0.0.1", where) if isinstance(where, int) else where, timeout
    )


def wait_port(where: Where, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}: {out[-2000:]}")
        with contextlib.suppress(OSError):
            connect(where, 0.2).close()
            return
        time.sleep(0.02)
    raise RuntimeError(f"{proc.args!r} did not listen on {where}")


@contextlib.contextmanager
def running(
    cmd: Sequence[str], ports: Sequence[Where], kill: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """``cmd`` running until the block ends, once it listens on ``ports``; then stopped
    with SIGTERM, or with SIGKILL if ``kill`` (memcached takes a second to stop on
    SIGTERM, and a test's data need not survive it)."""
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for port in ports:
            wait_port(port, proc)
        yield proc
    finally:
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


@contextlib.contextmanager
def memcacheds(n: int) -> Iterator[list[int]]:
    """``n`` memcached servers on free ports of 127.0.0.1."""
    ports = free_ports(n)
    with contextlib.ExitStack() as stack:
        for port in ports:
            stack.enter_context(memcached_at(("127.0.0.1", port)))
        yield ports


@contextlib.contextmanager
def memcached_at(where: tuple[str, int] | str) -> Iterator[None]:
    """One memcached on a (host, port) (any loopback address: 127.0.0.2 and up are free
    for port 11211 whatever runs on 127.0.0.1) or on a unix socket's path."""
    cmd = [need("memcached"), "-U", "0", "-m", "16", "-u", "root"]
    cmd += ["-s", where] if isinstance(where, str) else ["-l", where[0], "-p", str(where[1])]
    with running(cmd, [where], kill=True):
        yield


class Memcache:
    """A blocking memcached text-protocol connection (set and multi-get only), to a
    port on 127.0.0.1, a (host, port), or a unix socket's path."""

    def __init__(self, where: Where) -> None:
        self.sock = connect(where)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("memcached closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def set_many(self, keys: Sequence[bytes]) -> None:
        """Set every key (value "1"), pipelined, then read the replies."""
        for start in range(0, len(keys), 200):
            part = keys[start : start + 200]
            self.sock.sendall(b"".join(b"set %s 0 0 1\r\n1\r\n" % k for k in part))
            for k in part:
                reply = self._line()
                if reply != b"STORED":
                    raise RuntimeError(f"set {k!r}: {reply!r}")

    def present(self, keys: Sequence[bytes]) -> set[bytes]:
        """Which of ``keys`` this server holds (multi-get in batches)."""
        found: set[bytes] = set()
        for start in range(0, len(keys), 100):
            self.sock.sendall(b"get " + b" ".join(keys[start : start + 100]) + b"\r\n")
            while True:
                line = self._line()
                if line == b"END":
                    break
                if not line.startswith(b"VALUE "):
                    raise RuntimeError(f"get: {line!r}")
                found.add(line.split(b" ")[1])
                self._line()  # the value
        return found


def flush(*servers: Where) -> None:
    """Empty each memcached (a port on 127.0.0.1, a (host, port) or a unix socket)."""
    for where in servers:
        conn = Memcache(where)
        conn.sock.sendall(b"flush_all\r\n")
        assert conn._line() == b"OK"
        conn.close()


def owners_by_lookup(
    ports: Sequence[Where], names: Sequence[str], keys: Sequence[bytes]
) -> list[str]:
    """Which memcached (by ``names[i]`` for ``ports[i]``: a port on 127.0.0.1, a (host,
    port) or a unix socket's path) holds each key."""
    where: dict[bytes, str] = {}
    for port, name in zip(ports, names, strict=True):
        conn = Memcache(port)
        try:
            for k in conn.present(keys):
                if k in where:
                    raise RuntimeError(f"key {k!r} is on two servers")
                where[k] = name
        finally:
            conn.close()
    missing = [k for k in keys if k not in where]
    if missing:
        raise RuntimeError(f"{len(missing)} keys were stored nowhere, e.g. {missing[:3]}")
    return [where[k] for k in keys]
