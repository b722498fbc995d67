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

LOCK_BACKENDS = ["memory"]


@pytest.fixture(params=LOCK_BACKENDS)
def make_table(request):
    if request.param == "memory":
        from ringhash import LockTable

        yield lambda **kw: LockTable(**kw)
    else:  # pragma: no cover - backends added by their own modules
        yield request.getfixturevalue(f"make_{request.param}_table")
