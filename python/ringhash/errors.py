"""Exceptions raised by ringhash (the lock-table errors live in :mod:`ringhash.locks`)."""

__all__ = ["EmptyRingError"]


class EmptyRingError(LookupError):
    """A lookup was asked of a ring with no nodes."""
