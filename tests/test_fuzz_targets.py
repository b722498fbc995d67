"""The fuzz targets (tests/fuzz/targets.py) in the ordinary suite: on their seed
corpus and on inputs hypothesis draws, so they are exercised even where atheris
(``.ci/fuzz``) is absent."""

import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz.targets import TARGETS

CORPUS = pathlib.Path(__file__).resolve().parent / "fuzz" / "corpus"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seed_corpus(name):
    files = sorted((CORPUS / name).glob("*"))
    assert files, f"no seed corpus for {name}"
    for f in files:
        TARGETS[name](f.read_bytes())


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=512))
def test_arbitrary_input(name, data):
    TARGETS[name](data)
