"""Every constructor and loader refuses node names that are not ``str`` and names
given twice, the same way, whatever the door (the ring rule's checks live in one
module, ``ringhash._rule``)."""

import json
import struct
import zlib

import numpy as np
import pytest

from ringhash import HashRing, RingSnapshot


def _blob(desc, points=(1, 2), owners=(0, 0)):
    """to_bytes framing around any description (the checksum made to fit)."""
    header = json.dumps(desc).encode()
    body = (
        struct.pack("<8sHHI", b"RINGHASH", 1, 0, len(header))
        + header
        + struct.pack("<Q", len(points))
        + np.asarray(points, "<u4").tobytes()
        + np.asarray(owners, "<i4").tobytes()
    )
    return body + struct.pack("<I", zlib.crc32(body))


def _preset(name, state):
    return {"format": "ringhash.ring", "version": 1, "preset": name, "state": state}


DEFAULT = {
    "format": "ringhash.ring",
    "version": 1,
    "preset": None,
    "vnodes": 2,
    "hash": "murmur3",
    "seed": 0,
}

# (constructor, what it is given) -> the error a duplicate gives.
DUPLICATES = {
    "HashRing(list)": lambda: HashRing(["a", "b", "a"]),
    "ketama": lambda: HashRing.ketama([("a:1", 1), ("b:1", 1), ("a:1", 2)]),
    "groupcache": lambda: HashRing.groupcache(["a", "b", "a"]),
    "stathat": lambda: HashRing.stathat(["a", "b", "a"]),
    "from_dict ketama": lambda: HashRing.from_dict(
        _preset("ketama", {"servers": [["a:1", 1], ["a:1", 1]]})
    ),
    "from_dict groupcache": lambda: HashRing.from_dict(
        _preset("groupcache", {"replicas": 3, "order": ["a", "b", "a"]})
    ),
    "from_dict stathat": lambda: HashRing.from_dict(
        _preset("stathat", {"replicas": 3, "ops": [["add", "a"], ["add", "a"]]})
    ),
    "from_bytes ketama": lambda: HashRing.from_bytes(
        _blob(_preset("ketama", {"servers": [["a:1", 1], ["a:1", 1]]}))
    ),
    "from_bytes groupcache": lambda: HashRing.from_bytes(
        _blob(_preset("groupcache", {"replicas": 3, "order": ["a", "a"]}))
    ),
    "RingSnapshot.from_bytes stathat": lambda: RingSnapshot.from_bytes(
        _blob(_preset("stathat", {"replicas": 3, "ops": [["add", "a"], ["add", "a"]]}))
    ),
}


@pytest.mark.parametrize("door", list(DUPLICATES))
def test_a_name_given_twice_is_refused(door):
    with pytest.raises(ValueError, match="duplicate|out of turn"):
        DUPLICATES[door]()


def test_the_ring_refuses_to_add_a_node_it_has():
    for ring in (
        HashRing(["a"]),
        HashRing.ketama({"a": 1}),
        HashRing.groupcache(["a"]),
        HashRing.stathat(["a"]),
    ):
        with pytest.raises(ValueError, match="already in the ring"):
            ring.add("a")


NOT_STR = [None, 1, b"a", ("a",), 1.5]


@pytest.mark.parametrize("name", NOT_STR, ids=repr)
def test_constructors_refuse_names_that_are_not_str(name):
    for make in (
        lambda: HashRing(["a", name]),
        lambda: HashRing({"a": 1.0, name: 1.0}),
        lambda: HashRing.ketama([("a:1", 1), (name, 1)]),
        lambda: HashRing.groupcache(["a", name]),
        lambda: HashRing.stathat(["a", name]),
        lambda: HashRing(["a"]).add(name),
        lambda: HashRing.ketama({"a": 1}).add(name, 1),
        lambda: HashRing.groupcache(["a"]).add(name),
        lambda: HashRing.stathat(["a"]).add(name),
    ):
        with pytest.raises(TypeError, match="must be str"):
            make()


@pytest.mark.parametrize("name", [None, 1, ["a"], 1.5], ids=repr)
def test_loaders_refuse_names_that_are_not_str(name):
    """JSON gives null, numbers and lists: each is malformed, never str()-coerced."""
    descs = [
        _preset("ketama", {"servers": [["a:1", 1], [name, 1]]}),
        _preset("groupcache", {"replicas": 3, "order": ["a", name]}),
        _preset("stathat", {"replicas": 3, "ops": [["add", "a"], ["add", name]]}),
    ]
    for desc in descs:
        with pytest.raises(ValueError, match="must be str"):
            HashRing.from_dict(desc)
        with pytest.raises(ValueError, match="must be str"):
            HashRing.from_bytes(_blob(desc))


def test_a_string_is_not_a_list_of_names():
    """The old loader split a str into characters; now it is refused."""
    with pytest.raises(ValueError, match="malformed groupcache"):
        HashRing.from_dict(_preset("groupcache", {"replicas": 3, "order": "abc"}))
    with pytest.raises(ValueError, match="malformed ketama"):
        HashRing.from_dict(_preset("ketama", {"servers": "a:1"}))


def test_loaded_rings_round_trip():
    """What every loader accepts, it writes back and loads again."""
    for ring in (
        HashRing(["a", "b"]),
        HashRing.ketama({"a:1": 1, "b:1": 2}),
        HashRing.groupcache(["x", "y"]),
        HashRing.stathat(["p", "q"]),
    ):
        again = HashRing.from_bytes(ring.to_bytes())
        assert again == ring and HashRing.from_dict(again.to_dict()) == ring
        assert again.to_bytes() == ring.to_bytes()


def test_default_descriptions_refuse_non_str_names():
    with pytest.raises(ValueError, match="malformed ring description"):
        HashRing.from_bytes(_blob({**DEFAULT, "nodes": {"a": 1.0, "": 1.0}}))
