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
