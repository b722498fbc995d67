"""The examples in docstrings and in the README run and give what they show."""

import doctest
import pathlib

import pytest

import ringhash
import ringhash.hashing
import ringhash.jump
import ringhash.locks
import ringhash.locks._memory
import ringhash.maglev
import ringhash.multiprobe
import ringhash.rendezvous
import ringhash.ring

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


MODULES = [
    ringhash.hashing,
    ringhash.ring,
    ringhash.locks,
    ringhash.locks._memory,
    ringhash.jump,
    ringhash.rendezvous,
    ringhash.maglev,
    ringhash.multiprobe,
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    extra = {"HashRing": ringhash.HashRing, "LockTable": ringhash.LockTable}
    result = doctest.testmod(module, extraglobs=extra, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_readme_examples():
    result = doctest.testfile(str(README), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5
    assert result.failed == 0
