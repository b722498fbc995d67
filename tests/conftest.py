import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

if os.environ.get("RINGHASH_EXPECT_INSTALLED"):
    # CI runs the suite against an installed wheel: make sure that is what was imported.
    import ringhash

    assert "site-packages" in ringhash.__file__, f"ringhash imported from {ringhash.__file__}"


# ---------------------------------------------------------------- lock backends
# The lock-table conformance tests run unchanged against every backend listed
# here; a backend fixture yields a factory `make(default_ttl=None)`.
import pytest  # noqa: E402

LOCK_BACKENDS = ["memory", "redis"]


@pytest.fixture(params=LOCK_BACKENDS)
def make_table(request):
    if request.param == "memory":
        from ringhash import LockTable

        yield lambda **kw: LockTable(**kw)
    else:  # pragma: no cover - backends added by their own modules
        yield request.getfixturevalue(f"make_{request.param}_table")


# ---------------------------------------------------------------- Redis
# Tests that need Redis start their own server on a free loopback port. They
# are skipped (with the reason) only when no redis-server binary exists at all;
# .ci/run installs it.
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

from realservers import free_port  # noqa: E402

REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    """A redis-server process of the test's own, on 127.0.0.1."""

    def __init__(self, directory, *, aof=False, port=None):
        self.dir = directory
        self.port = port or free_port()
        self.aof = aof
        self.proc = None

    def start(self):
        args = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]
        if self.aof:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def client(self, **kw):
        import redis

        return redis.Redis(port=self.port, **{"socket_timeout": 5, **kw})


def wait_for_withdrawals(timeout=10.0):
    """Wait until the lock tables' background withdrawals have ended (a waiter that gave
    up while Redis could not be reached is withdrawn once it answers), and fail if one
    does not. Left running past a test that then stops its server, one would call the
    dead server until its TTL ends, through redis-py's retries, whose jittered backoff
    draws from the global ``random`` while later tests (Hypothesis's) run."""
    import threading

    for t in threading.enumerate():
        if t.name in ("ringhash-redis-cancel", "ringhash-redis-release"):
            t.join(timeout)
            assert not t.is_alive(), f"{t.name} did not end once Redis answered"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    if REDIS_SERVER is None:
        pytest.skip(
            "no redis-server binary on this machine "
            "(.ci/run installs it: apt-get install redis-server)"
        )
    pytest.importorskip("redis", reason="redis-py is not installed (pip install 'ringhash[redis]')")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def make_redis_table(redis_server, request):
    from ringhash.redis_locks import RedisLockTable

    # A fresh key prefix per test keeps tests independent on the shared server.
    prefix = f"t{abs(hash(request.node.nodeid)) % 10**9}:{time.monotonic_ns()}:"
    client = redis_server.client()
    yield lambda default_ttl=None, **kw: RedisLockTable(
        client, prefix=prefix, default_ttl=30.0 if default_ttl is None else default_ttl, **kw
    )
    client.close()
