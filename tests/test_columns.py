"""Columns as batches: Arrow (through the C Data Interface), pandas, polars,
nanoarrow, DuckDB and numpy StringDType, each checked key for key against the
list path and the pure-Python reference ring."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from arrowcraft import Crafted, craft_array
from ringhash import HashRing, crc32, murmur3_32
from ringhash._reference import ReferenceRing

pa = pytest.importorskip("pyarrow", reason="pyarrow (a test extra) is not installed")

NODES = [f"node-{i}" for i in range(23)]
RING = HashRing(NODES)
REF = ReferenceRing(dict.fromkeys(NODES, 1.0))
STR_KEYS = [f"user:{i:06d}" for i in range(300)] + [
    "",
    "ünïcödé ✓",
    "a\x00b",
    "\x00",
    "x" * 13,  # longer than a view's inline 12 bytes
    "y" * 12,
    "z" * 64,
    "w" * 65,
    "long " * 40,
]
BYTES_KEYS = [k.encode() for k in STR_KEYS] + [b"\xff\xfe not utf-8"]
INT_KEYS = [0, 1, -1, 2**31 - 1, -(2**31), 2**32, -(2**63), 2**63 - 1, *range(-100, 100)]


def owners(keys):
    return np.array([RING.nodes.index(REF.get(k)) for k in keys], dtype=np.int32)


def check(col, keys):
    """Every batch method on ``col`` equals the list path and the reference."""
    want = RING.lookup(list(keys))
    np.testing.assert_array_equal(want, owners(keys))
    np.testing.assert_array_equal(RING.lookup(col), want)
    np.testing.assert_array_equal(RING.hash_keys(col), RING.hash_keys(list(keys)))
    assert RING.get_many(col) == RING.get_many(list(keys))


STRING_TYPES = ["utf8", "large_utf8", "string_view"]
BINARY_TYPES = ["binary", "large_binary", "binary_view"]
INT_TYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


@pytest.mark.parametrize("type_name", STRING_TYPES)
def test_string_types(type_name):
    arr = pa.array(STR_KEYS, type=getattr(pa, type_name)())
    check(arr, STR_KEYS)


@pytest.mark.parametrize("type_name", BINARY_TYPES)
def test_binary_types(type_name):
    arr = pa.array(BYTES_KEYS, type=getattr(pa, type_name)())
    check(arr, BYTES_KEYS)


def test_non_utf8_bytes_in_a_utf8_column_hash_as_stored():
    raw = pa.array([b"\xff\xfe", b"ok"], type=pa.binary())
    as_utf8 = raw.view(pa.utf8())  # pyarrow does not validate a view
    np.testing.assert_array_equal(RING.lookup(as_utf8), RING.lookup([b"\xff\xfe", b"ok"]))


def test_fixed_size_binary_keeps_trailing_nuls():
    keys = [b"abc\x00", b"\x00\x00\x00\x00", b"wxyz"]
    arr = pa.array(keys, type=pa.binary(4))
    check(arr, keys)  # unlike a numpy "S" array, Arrow keeps every stored byte
    assert RING.hash_keys(arr)[0] == murmur3_32(b"abc\x00")


@pytest.mark.parametrize("type_name", INT_TYPES)
def test_int_types(type_name):
    t = getattr(pa, type_name)()
    info = np.iinfo(np.dtype(type_name))
    keys = sorted({max(info.min, min(info.max, k)) for k in INT_KEYS})
    check(pa.array(keys, type=t), keys)


@pytest.mark.parametrize("type_name", STRING_TYPES + BINARY_TYPES + INT_TYPES)
def test_dictionary_encoded(type_name):
    t = getattr(pa, type_name)()
    base = BYTES_KEYS if type_name in BINARY_TYPES else STR_KEYS
    if type_name in INT_TYPES:
        base = list(range(0, 100, 3))
    keys = [base[(i * 7) % len(base)] for i in range(500)]
    keys = [k for k in keys if k in set(base[:100])]  # at most 100 values: int8 codes fit
    for index_type in (pa.int8(), pa.uint16(), pa.int32(), pa.int64()):
        arr = pa.array(keys, type=t).dictionary_encode()
        arr = pa.DictionaryArray.from_arrays(arr.indices.cast(index_type), arr.dictionary)
        check(arr, keys)


def test_slices_and_chunks():
    arr = pa.array(STR_KEYS)
    for start, stop in [(1, 5), (7, len(STR_KEYS)), (3, 3), (64, 130)]:
        check(arr.slice(start, stop - start), STR_KEYS[start:stop])
        check(pa.array(STR_KEYS, pa.string_view()).slice(start, stop - start), STR_KEYS[start:stop])
    chunked = pa.chunked_array([STR_KEYS[:10], [], STR_KEYS[10:11], [], STR_KEYS[11:]])
    check(chunked, STR_KEYS)
    check(pa.chunked_array([], type=pa.utf8()), [])
    check(pa.chunked_array([arr.slice(5, 20), arr.slice(100)]), STR_KEYS[5:25] + STR_KEYS[100:])
    dict_chunks = pa.chunked_array(  # each chunk with its own dictionary
        [pa.array(STR_KEYS[:50]).dictionary_encode(), pa.array(STR_KEYS[40:]).dictionary_encode()]
    )
    check(dict_chunks, STR_KEYS[:50] + STR_KEYS[40:])
    check(pa.array(INT_KEYS).slice(3, 50), INT_KEYS[3:53])


def test_empty_columns():
    for t in (pa.utf8(), pa.string_view(), pa.int64(), pa.int8()):
        empty = pa.array([], type=t)
        assert RING.lookup(empty).shape == (0,)
        assert RING.lookup(empty).dtype == np.int32
        assert RING.hash_keys(empty).shape == (0,)
        assert RING.get_many(empty) == []


@pytest.mark.parametrize("where", [0, 5, 9])
@pytest.mark.parametrize("type_name", ["utf8", "string_view", "int64", "int16", "dictionary"])
def test_nulls(where, type_name):
    keys: list[object] = [f"k{i}" for i in range(10)]
    if type_name.startswith("int"):
        keys = list(range(10))
    keys[where] = None
    if type_name == "dictionary":
        arr = pa.array(keys).dictionary_encode()
    else:
        arr = pa.array(keys, type=getattr(pa, type_name)())
    out = np.full(10, 77, dtype=np.int32)
    with pytest.raises(ValueError, match=rf"keys\[{where}\] is null"):
        RING.lookup(arr, out=out)
    assert (out == 77).all()  # nothing written
    for method in (RING.hash_keys, RING.load, RING.partition, RING.assign_bounded):
        with pytest.raises(ValueError, match=rf"keys\[{where}\] is null"):
            method(arr)
    got = RING.lookup(arr, nulls=-1)
    rest = [i for i in range(10) if i != where]
    assert got[where] == -1
    np.testing.assert_array_equal(got[rest], RING.lookup([keys[i] for i in rest]))
    names = RING.get_many(arr, nulls=None)
    assert names[where] is None
    assert [names[i] for i in rest] == RING.get_many([keys[i] for i in rest])
    rows = RING.lookup_nodes(arr, 3, nulls=-5)
    assert rows[where].tolist() == [-5, -5, -5]
    np.testing.assert_array_equal(rows[rest], RING.lookup_nodes([keys[i] for i in rest], 3))


def test_null_dictionary_values_count_as_nulls():
    arr = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0], pa.int8()), pa.array(["a", None]))
    with pytest.raises(ValueError, match=r"keys\[1\] is null"):
        RING.lookup(arr)
    assert RING.lookup(arr, nulls=-1).tolist() == [RING.lookup(["a"])[0], -1, RING.lookup(["a"])[0]]


def test_nulls_argument_is_checked():
    arr = pa.array(["a", None])
    with pytest.raises(TypeError, match="nulls must be an int"):
        RING.lookup(arr, nulls=True)
    with pytest.raises(TypeError, match="nulls must be an int"):
        RING.lookup(arr, nulls=1.5)
    with pytest.raises(ValueError, match="int32"):
        RING.lookup(arr, nulls=2**31)


@pytest.mark.parametrize(
    ("arr", "name"),
    [
        (lambda: pa.array([1.5]), "float64"),
        (lambda: pa.array([1.5], pa.float32()), "float32"),
        (lambda: pa.array([True]), "bool"),
        (lambda: pa.array([[1]]), "list"),
        (lambda: pa.array([1], pa.timestamp("s")), "timestamp"),
        (lambda: pa.array([1], pa.decimal128(5, 2)), "decimal"),
        (lambda: pa.array([{"a": 1.5}]), "float64"),  # a one-field struct is a table
        (lambda: pa.array([None], pa.null()), "null"),
        (lambda: pa.array([1.5]).dictionary_encode(), "float64"),
    ],
)
def test_unsupported_arrow_types(arr, name):
    with pytest.raises(TypeError, match=rf"Arrow type .*{name}"):
        RING.lookup(arr())


def test_tables_of_several_columns_are_refused():
    with pytest.raises(TypeError, match="a table of 2 columns"):
        RING.lookup(pa.array([{"a": 1, "b": 2}]))


def test_every_batch_method_takes_columns():
    arr = pa.array(STR_KEYS)
    keys = list(STR_KEYS)
    other = HashRing([*NODES, "node-new"])
    assert RING.load(arr) == RING.load(keys)
    np.testing.assert_array_equal(RING.assign_bounded(arr), RING.assign_bounded(keys))
    np.testing.assert_array_equal(RING.lookup_nodes(arr, 3), RING.lookup_nodes(keys, 3))
    change = RING.diff(other)
    np.testing.assert_array_equal(change.moved(arr), change.moved(keys))
    np.testing.assert_array_equal(murmur3_32(arr), murmur3_32(keys))
    np.testing.assert_array_equal(crc32(arr), crc32(keys))
    snap = RING.snapshot()
    np.testing.assert_array_equal(snap.lookup(arr), RING.lookup(keys))
    for preset in (
        HashRing.ketama({"10.0.0.1:11211": 100, "10.0.0.2:11211": 200}),
        HashRing.stathat(["a", "b", "c"]),
        HashRing.groupcache(["a", "b", "c"]),
        HashRing(NODES, hash="crc32"),
    ):
        np.testing.assert_array_equal(preset.lookup(arr), preset.lookup(keys))


def test_out_buffer_with_a_column():
    arr = pa.array(STR_KEYS)
    out = np.empty(len(STR_KEYS), dtype=np.int32)
    assert RING.lookup(arr, out=out) is out
    np.testing.assert_array_equal(out, RING.lookup(STR_KEYS))
    with pytest.raises(ValueError, match="shape"):
        RING.lookup(arr, out=np.empty(3, dtype=np.int32))


def test_large_offsets_past_2_gib():
    """A large_utf8 column whose offsets exceed 2**31 (built without 2 GiB of data:
    the data buffer's address is moved back by the offset)."""
    payload = np.frombuffer(b"hello-world", dtype=np.uint8)
    base = 2**31 + 12345
    offsets = np.array([base, base + 5, base + 11], dtype=np.int64)
    arr = craft_array("U", 2, [None, offsets, payload], data_shift=base)
    np.testing.assert_array_equal(RING.lookup(arr), RING.lookup(["hello", "-world"]))


def _views(*entries: tuple[int, bytes | tuple[int, int]]) -> np.ndarray:
    """16-byte views: (length, inline bytes) or (length, (buffer index, offset))."""
    out = np.zeros((len(entries), 16), dtype=np.uint8)
    for row, (length, rest) in zip(out, entries, strict=True):
        row[:4] = np.frombuffer(np.int32(length).tobytes(), np.uint8)
        if isinstance(rest, bytes):
            row[4 : 4 + len(rest)] = np.frombuffer(rest, np.uint8)
        else:
            row[4:8] = np.frombuffer(b"abcd", np.uint8)
            row[8:12] = np.frombuffer(np.int32(rest[0]).tobytes(), np.uint8)
            row[12:16] = np.frombuffer(np.int32(rest[1]).tobytes(), np.uint8)
    return out


DATA = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


def test_a_crafted_producer_is_read_like_pyarrow():
    offsets = np.array([0, 3, 3, 10], dtype=np.int32)
    arr = craft_array("u", 3, [None, offsets, DATA])
    np.testing.assert_array_equal(RING.lookup(arr), RING.lookup(["abc", "", "defghij"]))
    views = _views((3, b"xyz"), (14, (0, 2)))
    arr = craft_array("vu", 2, [None, views, DATA, np.array([26], dtype=np.int64)])
    np.testing.assert_array_equal(RING.lookup(arr), RING.lookup(["xyz", "cdefghijklmnop"]))


LIES = {
    "offsets going backwards": (
        lambda: craft_array("u", 2, [None, np.array([0, 5, 2], np.int32), DATA]),
        r"offsets or view of keys\[1\]",
    ),
    "a negative offset": (
        lambda: craft_array("U", 2, [None, np.array([-4, 0, 2], np.int64), DATA]),
        r"offsets or view of keys\[0\]",
    ),
    "a view past its buffer": (
        lambda: craft_array(
            "vu", 2, [None, _views((2, b"ab"), (20, (0, 10))), DATA, np.array([26], np.int64)]
        ),
        r"offsets or view of keys\[1\]",
    ),
    "a view naming a missing buffer": (
        lambda: craft_array("vz", 1, [None, _views((20, (3, 0))), DATA, np.array([26], np.int64)]),
        r"offsets or view of keys\[0\]",
    ),
    "a negative view length": (
        lambda: craft_array("vu", 1, [None, _views((-1, b"")), np.zeros(0, np.int64)]),
        r"offsets or view of keys\[0\]",
    ),
    "too few buffers": (
        lambda: craft_array("u", 1, [None, np.array([0, 1], np.int32)]),
        "has 2 buffers; its type has 3",
    ),
    "too many buffers": (
        lambda: craft_array("l", 1, [None, np.zeros(1, np.int64), DATA]),
        "has 3 buffers; its type has 2",
    ),
    "no offsets buffer": (lambda: craft_array("u", 1, [None, None, DATA]), "no offsets buffer"),
    "no values buffer": (lambda: craft_array("l", 4, [None, None]), "no values buffer"),
    "nulls but no validity": (
        lambda: craft_array("l", 1, [None, np.zeros(1, np.int64)], null_count=1),
        "no validity buffer",
    ),
    "a released array": (
        lambda: craft_array("l", 1, [None, np.zeros(1, np.int64)], released=True),
        "already released",
    ),
    "a negative length": (lambda: craft_array("l", -1, [None, None]), "negative length"),
    "a dictionary code past the dictionary": (
        lambda: craft_array(
            "c",
            3,
            [None, np.array([0, 1, 2], np.int8)],
            dictionary=craft_array("u", 2, [None, np.array([0, 1, 2], np.int32), DATA]),
        ),
        r"dictionary code of keys\[2\]",
    ),
    "a negative dictionary code": (
        lambda: craft_array(
            "l",
            2,
            [None, np.array([0, -1], np.int64)],
            dictionary=craft_array("u", 1, [None, np.array([0, 1], np.int32), DATA]),
        ),
        r"dictionary code of keys\[1\]",
    ),
    "a dictionary value with bad offsets": (
        lambda: craft_array(
            "c",
            3,
            [None, np.array([0, 0, 1], np.int8)],
            dictionary=craft_array("u", 2, [None, np.array([0, 1, 0], np.int32), DATA]),
        ),
        r"offsets or view of keys\[2\]",
    ),
    "dictionary indices of a non-integer type": (
        lambda: craft_array(
            "u",
            1,
            [None, np.array([0, 1], np.int32), DATA],
            dictionary=craft_array("u", 1, [None, np.array([0, 1], np.int32), DATA]),
        ),
        "dictionary indices of Arrow type utf8",
    ),
    "a dictionary array without its dictionary": (
        lambda: _no_dictionary(),
        "without its dictionary",
    ),
}


def _no_dictionary() -> Crafted:
    arr = craft_array(
        "c",
        1,
        [None, np.zeros(1, np.int8)],
        dictionary=craft_array("u", 1, [None, np.array([0, 1], np.int32), DATA]),
    )
    structs = arr._structs

    def without() -> tuple[object, object]:
        schema, array = structs()
        array.dictionary = type(array.dictionary)()
        return schema, array

    arr._structs = without  # type: ignore[method-assign]
    return arr


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_lying_producer_gets_a_clear_error(lie):
    make, message = LIES[lie]
    for method in (RING.lookup, RING.hash_keys):
        with pytest.raises(ValueError, match=message):
            method(make())


def test_column_keeps_buffers_alive():
    """A Column owns what it read: the producer may drop its array at once."""
    from ringhash._core import Column

    col = Column.from_arrow(pa.array(STR_KEYS, type=pa.large_utf8()))
    import gc

    gc.collect()
    assert len(col) == len(STR_KEYS)
    np.testing.assert_array_equal(
        RING._snap._table.search(RING.hash_keys(STR_KEYS)), RING.lookup(STR_KEYS)
    )
    from ringhash._core import lookup_column

    np.testing.assert_array_equal(lookup_column(RING._snap._table, col), RING.lookup(STR_KEYS))


# ---------------------------------------------------------------- other producers


def test_polars():
    pl = pytest.importorskip("polars", reason="polars (a test extra) is not installed")
    check(pl.Series(STR_KEYS), STR_KEYS)
    check(pl.Series(BYTES_KEYS), BYTES_KEYS)
    check(pl.Series(INT_KEYS, dtype=pl.Int64), INT_KEYS)
    unsigned = [k for k in INT_KEYS if k >= 0]
    check(pl.Series(unsigned, dtype=pl.UInt64), unsigned)
    check(pl.Series(range(-100, 100), dtype=pl.Int16), list(range(-100, 100)))
    check(pl.Series(STR_KEYS, dtype=pl.Categorical), STR_KEYS)
    check(pl.Series(STR_KEYS).slice(10, 50), STR_KEYS[10:60])
    s = pl.Series(["a", None, "b"])
    assert RING.lookup(s, nulls=-1).tolist() == [RING.lookup(["a"])[0], -1, RING.lookup(["b"])[0]]
    with pytest.raises(TypeError, match="float64"):
        RING.lookup(pl.Series([1.0, 2.0]))
    df = pl.DataFrame({"id": STR_KEYS})
    check(df["id"], STR_KEYS)


def test_pandas():
    pd = pytest.importorskip("pandas", reason="pandas (a test extra) is not installed")
    check(pd.Series(STR_KEYS, dtype="string[pyarrow]"), STR_KEYS)
    check(pd.Series(STR_KEYS, dtype=pd.ArrowDtype(pa.large_string())), STR_KEYS)
    check(pd.Index(STR_KEYS, dtype="string[pyarrow]"), STR_KEYS)
    # against what pandas holds: pandas 2 builds categories through numpy, whose "U"
    # arrays drop trailing NULs ("\x00" becomes "")
    for cat in (pd.Series(STR_KEYS, dtype="category"), pd.CategoricalIndex(STR_KEYS)):
        check(cat, cat.tolist())
    check(pd.Series(STR_KEYS, dtype=object), STR_KEYS)  # numpy-backed: the list path
    check(pd.Series(INT_KEYS, dtype="int64"), INT_KEYS)  # numpy-backed: the numpy path
    check(pd.Index(INT_KEYS), INT_KEYS)
    check(pd.Series(INT_KEYS, dtype="Int64"), INT_KEYS)  # masked, no NA: its numpy data
    masked = pd.Series([5, None, 7], dtype="UInt32")  # with an NA: through Arrow
    assert RING.lookup(masked, nulls=-1).tolist() == [*RING.lookup([5]), -1, *RING.lookup([7])]
    check(pd.Series(range(100), dtype="uint8"), list(range(100)))
    s = pd.Series(["a", None, "b"], dtype="string[pyarrow]")
    assert RING.lookup(s, nulls=-1)[1] == -1
    with pytest.raises(TypeError, match="unsupported key dtype float64"):
        RING.lookup(pd.Series([1.5]))
    with pytest.raises(TypeError):
        RING.lookup(pd.Series(pd.to_datetime(["2020-01-01"])))


def test_pandas_numpy_backed_is_not_copied():
    pd = pytest.importorskip("pandas", reason="pandas (a test extra) is not installed")
    from ringhash._keys import U64, classify

    s = pd.Series(np.arange(1000, dtype=np.uint64))
    batch = classify(s)
    assert batch.kind == U64
    assert np.shares_memory(batch.data, s.to_numpy())


def test_nanoarrow_and_duckdb():
    na = pytest.importorskip("nanoarrow", reason="nanoarrow (a test extra) is not installed")
    check(na.Array(STR_KEYS, na.string()), STR_KEYS)
    check(na.Array(INT_KEYS, na.int64()), INT_KEYS)
    duckdb = pytest.importorskip("duckdb", reason="duckdb (a test extra) is not installed")
    sql = "SELECT 'user:' || lpad(CAST(i AS VARCHAR), 6, '0') AS k FROM range(300) t(i)"
    keys = [f"user:{i:06d}" for i in range(300)]
    check(duckdb.sql(sql), keys)  # a one-column result, as an Arrow stream
    check(duckdb.sql(sql).to_arrow_table().column("k"), keys)
    with pytest.raises(TypeError, match="a table of 2 columns"):
        RING.lookup(duckdb.sql("SELECT 1 AS a, 2 AS b"))


def test_one_column_tables():
    table = pa.table({"k": STR_KEYS})
    check(table, STR_KEYS)
    with pytest.raises(TypeError, match="a table of 2 columns"):
        RING.lookup(pa.table({"a": [1], "b": [2]}))
    pl = pytest.importorskip("polars", reason="polars (a test extra) is not installed")
    check(pl.DataFrame({"k": STR_KEYS}), STR_KEYS)


# ---------------------------------------------------------------- numpy StringDType


def test_string_dtype():
    sd = np.dtypes.StringDType()
    check(np.array(STR_KEYS, dtype=sd), STR_KEYS)
    grid = np.array(STR_KEYS[:12], dtype=sd).reshape(3, 4)
    assert RING.lookup(grid).shape == (3, 4)
    np.testing.assert_array_equal(RING.lookup(grid).ravel(), RING.lookup(STR_KEYS[:12]))
    strided = np.array(STR_KEYS, dtype=sd)[::3]
    check(strided, STR_KEYS[::3])
    empty = np.empty(3, dtype=sd)  # unset items are the default string ""
    np.testing.assert_array_equal(RING.lookup(empty), RING.lookup(["", "", ""]))


def test_string_dtype_nulls():
    sd = np.dtypes.StringDType(na_object=None)
    arr = np.array(["a", None, "b"], dtype=sd)
    with pytest.raises(ValueError, match=r"keys\[1\] is null"):
        RING.lookup(arr)
    assert RING.lookup(arr, nulls=-1).tolist() == [RING.lookup(["a"])[0], -1, RING.lookup(["b"])[0]]
    rows = RING.lookup_nodes(arr, 2, nulls=-3)
    assert rows[1].tolist() == [-3, -3]
    np.testing.assert_array_equal(rows[[0, 2]], RING.lookup_nodes(["a", "b"], 2))
    nan_na = np.array(["a", np.nan], dtype=np.dtypes.StringDType(na_object=np.nan))
    with pytest.raises(ValueError, match=r"keys\[1\] is null"):
        RING.hash_keys(nan_na)


# ---------------------------------------------------------------- partition


def test_partition_groups_rows_stably():
    keys = pa.array([f"k{i}" for i in range(5000)])
    order, offsets = RING.partition(keys)
    owner = RING.lookup(keys)
    assert order.dtype == np.int64
    assert offsets.tolist() == [0, *np.cumsum(np.bincount(owner, minlength=len(NODES))).tolist()]
    np.testing.assert_array_equal(order, np.argsort(owner, kind="stable"))
    for i in range(len(NODES)):
        assert (owner[order[offsets[i] : offsets[i + 1]]] == i).all()
    table = pa.table({"k": keys, "v": np.arange(5000)})
    shard = table.take(order[offsets[3] : offsets[4]])
    assert set(RING.get_many(shard["k"])) == {RING.nodes[3]}


def test_partition_edge_cases():
    order, offsets = RING.partition([])
    assert order.tolist() == []
    assert offsets.tolist() == [0] * (len(NODES) + 1)
    with pytest.raises(LookupError):
        HashRing().partition(["a"])


# ---------------------------------------------------------------- properties

keys_strategy = st.lists(st.one_of(st.none(), st.text(max_size=40)), max_size=60)


@given(keys_strategy, st.sampled_from(STRING_TYPES), st.booleans())
def test_strings_with_nulls_match_the_reference(keys, type_name, dictionary):
    arr = pa.array(keys, type=getattr(pa, type_name)())
    if dictionary:
        arr = arr.dictionary_encode()
    got = RING.lookup(arr, nulls=-1)
    want = [-1 if k is None else RING.nodes.index(REF.get(k)) for k in keys]
    assert got.tolist() == want


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=60), st.integers(0, 10))
def test_int64_slices_match_the_reference(keys, start):
    arr = pa.array(keys, type=pa.int64()).slice(min(start, len(keys)))
    want = [RING.nodes.index(REF.get(k)) for k in keys[min(start, len(keys)) :]]
    assert RING.lookup(arr).tolist() == want


def test_rings_pickle_with_columns_around():
    ring = pickle.loads(pickle.dumps(RING))
    np.testing.assert_array_equal(ring.lookup(pa.array(STR_KEYS)), RING.lookup(STR_KEYS))


@given(
    st.lists(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)), max_size=300),
    st.integers(0, 70),
    st.sampled_from(["int64", "int32", "uint64"]),
)
def test_int_columns_with_nulls_match_the_reference(keys, start, type_name):
    """Nulls found a bitmap word at a time (rows past the first 64, slices that
    start mid-word), in every integer width's widening loop."""
    if type_name == "uint64":
        keys = [None if k is None else k + 2**31 for k in keys]
    arr = pa.array(keys, type=getattr(pa, type_name)()).slice(min(start, len(keys)))
    rest = keys[min(start, len(keys)) :]
    want = [-1 if k is None else RING.nodes.index(REF.get(k)) for k in rest]
    assert RING.lookup(arr, nulls=-1).tolist() == want


def test_columns_longer_than_a_chunk_with_nulls():
    """Lookups hash 8,192 rows, then search them: rows on both sides of chunk
    boundaries, nulls among them, a slice whose bitmap starts mid-byte."""
    rng = np.random.default_rng(7)
    n = 20_000
    ints = rng.integers(-(2**62), 2**62, n)
    null = rng.random(n) < 0.01
    strs = [f"id-{k}" for k in ints]
    for arr, keys in (
        (pa.array(ints, mask=null), ints.tolist()),
        (pa.array(strs, mask=null), strs),
        (pa.array(strs, mask=null, type=pa.string_view()), strs),
    ):
        sliced, keep = arr.slice(3), slice(3, None)
        got = RING.lookup(sliced, nulls=-1)
        want = RING.lookup(keys[keep])
        want[null[keep]] = -1
        np.testing.assert_array_equal(got, want)


RUN_RINGS = [  # murmur3, crc32, md5 key hashes
    RING,
    HashRing(NODES, hash="crc32"),
    HashRing.ketama({f"10.0.0.{i}:11211": 1 for i in range(23)}),
]


@pytest.mark.parametrize("width", [1, 4, 12, 13, 16, 17, 36, 64, 65])
@pytest.mark.parametrize("type_name", [*STRING_TYPES, "binary", "large_binary", "binary_view"])
def test_runs_of_equal_length_keys(width, type_name):
    """Blocks of equal-length keys lying back to back hash as fixed-width items
    (every byte the key's, NULs included); a block where one key differs, a
    slice that starts mid-run, and every width around the kernels' limits (views
    of at most 12 bytes are inline, keys past 64 bytes are not fixed-width runs)."""
    rng = np.random.default_rng(width)
    keys = [bytes(rng.integers(0, 128, width, dtype=np.uint8)) for _ in range(3000)]  # UTF-8
    keys[5] = b"\0" * width  # a key of NULs: not stripped
    keys[700] = keys[700][:-1]  # one shorter key breaks its block's run
    arr = pa.array(keys, type=pa.binary()).cast(getattr(pa, type_name)())
    for ring in RUN_RINGS:
        for sliced, rest in ((arr, keys), (arr.slice(37), keys[37:])):
            np.testing.assert_array_equal(ring.hash_keys(sliced), ring.hash_keys(rest))
            np.testing.assert_array_equal(ring.lookup(sliced), ring.lookup(rest))


def test_runs_across_polars_buffers():
    """polars appends views into buffers that double in size: runs stop at each
    buffer's end, and blocks straddling two buffers take the general loop."""
    pl = pytest.importorskip("polars")
    keys = [f"{i:016x}" for i in range(100_000)] + [f"id-{i}" for i in range(500)]
    col = pl.Series(keys)
    for ring in RUN_RINGS:
        np.testing.assert_array_equal(ring.lookup(col), ring.lookup(keys))
        np.testing.assert_array_equal(ring.hash_keys(col[1234:]), ring.hash_keys(keys[1234:]))
