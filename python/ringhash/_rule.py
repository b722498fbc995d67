"""The ring rule's checks and ordering, in one leaf module every other imports.

Node names, weights, point counts and the order of nodes (by UTF-8 bytes) are
decided here and nowhere else: the default ring, the presets, persistence and
the command line all call these functions, so a name or a weight is accepted
or refused the same way whichever door it comes through.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = [
    "MAX_POINTS",
    "check_count",
    "check_node",
    "check_total",
    "check_vnodes",
    "check_weight",
    "parse_nodes",
    "point_count",
    "sort_nodes",
    "unique_names",
    "utf8",
]

#: Most points a ring may hold in total (and so any one node). Beyond it the
#: ring, its owners and its index would pass ~200 MB; add() and friends raise
#: ValueError instead.
MAX_POINTS = 1 << 24


def utf8(name: str) -> bytes:
    """A node name's bytes: what is hashed, and what nodes are ordered by."""
    return name.encode("utf-8")


def sort_nodes(names: Iterable[str]) -> tuple[str, ...]:
    """Node names in ring order (by UTF-8 bytes); batch results index into it."""
    return tuple(sorted(names, key=utf8))


def check_node(node: object) -> str:
    """A node name: a non-empty ``str`` encodable as UTF-8 (TypeError, ValueError)."""
    if type(node) is str and node and node.isascii():
        return node  # the common case, cheaply
    if not isinstance(node, str):
        raise TypeError(f"node names must be str, not {type(node).__name__}")
    if not node:
        raise ValueError("node names must be non-empty")
    try:
        node.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"node name {node!r} is not encodable as UTF-8 ({e.reason})") from None
    return str(node)


def check_weight(weight: object) -> float:
    """A node weight: a finite real number > 0, as a float."""
    if type(weight) is float and 0 < weight < math.inf:  # the common case, cheaply
        return weight
    if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, numbers.Real):
        raise TypeError(f"weight must be a real number, not {type(weight).__name__}")
    try:
        w = float(weight)
    except OverflowError:  # an int beyond float range
        w = math.inf
    if not math.isfinite(w) or w <= 0:
        raise ValueError(f"weight must be finite and > 0, got {weight!r}")
    return w


def check_vnodes(vnodes: object) -> int:
    if isinstance(vnodes, bool) or not isinstance(vnodes, (int, np.integer)):
        raise TypeError(f"vnodes must be an int, not {type(vnodes).__name__}")
    if not 1 <= vnodes <= MAX_POINTS:
        raise ValueError(f"vnodes must lie in [1, {MAX_POINTS}], got {vnodes}")
    return int(vnodes)


def check_count(n: object) -> int:
    """A replica count ``n`` >= 1."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, not {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return int(n)


def point_count(vnodes: int, weight: float) -> int:
    """Points of a node: ``max(1, floor(vnodes * weight + 0.5))``."""
    return max(1, math.floor(vnodes * weight + 0.5))


def check_total(counts: Iterable[int]) -> None:
    total = sum(counts)
    if total > MAX_POINTS:
        raise ValueError(
            f"the ring would hold {total} points; at most MAX_POINTS = {MAX_POINTS} are allowed "
            "(lower vnodes or the weights)"
        )


def _not_one_name(nodes: object) -> None:
    if isinstance(nodes, (str, bytes)):
        raise TypeError(
            "nodes must be an iterable of names or a mapping of name -> weight, "
            f"not a single {type(nodes).__name__}"
        )


def parse_nodes(nodes: object) -> dict[str, float]:
    """Names (weight 1.0 each) or a mapping of name to weight, checked, as a dict."""
    _not_one_name(nodes)
    weights: dict[str, float] = {}
    if isinstance(nodes, Mapping):
        items: Iterable[tuple[object, object]] = nodes.items()
    elif isinstance(nodes, Iterable):
        items = ((name, 1.0) for name in nodes)
    else:
        raise TypeError(f"nodes must be an iterable or a mapping, not {type(nodes).__name__}")
    for name, weight in items:
        name = check_node(name)
        if name in weights:
            raise ValueError(f"duplicate node {name!r}")
        weights[name] = check_weight(weight)
    return weights


def unique_names(nodes: object, what: str = "node") -> tuple[str, ...]:
    """Names in the order given, each checked, none twice."""
    _not_one_name(nodes)
    if not isinstance(nodes, Iterable):
        raise TypeError(f"nodes must be an iterable of names, not {type(nodes).__name__}")
    names: list[str] = []
    seen: set[str] = set()
    for n in nodes:
        name = check_node(n)
        if name in seen:
            raise ValueError(f"duplicate {what} {name!r}")
        seen.add(name)
        names.append(name)
    return tuple(names)
