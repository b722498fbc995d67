"""Fail loudly, with instructions, when the compiled core is missing."""

_MESSAGE = """\
ringhash's compiled extension (ringhash._core) could not be imported:

    {error}

ringhash has no pure-Python fallback. If you are running from a source
checkout, build the extension first:

    pip install .                                   # a normal install, or
    pip install -e . --no-build-isolation           # an editable one
                                                    # (needs cython>=3.1, numpy, setuptools)

Building needs a C compiler. Wheels for CPython 3.10-3.13 need none.
"""


def raise_build_error(error: BaseException) -> None:
    raise ImportError(_MESSAGE.format(error=error)) from error
