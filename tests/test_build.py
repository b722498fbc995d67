"""No silent fallback: without the compiled core, importing ringhash says how to build it."""

import ctypes
import os
import subprocess
import sys
import textwrap

import pytest


def test_missing_extension_raises_import_error_with_instructions():
    code = textwrap.dedent("""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "ringhash._core":
                    raise ImportError("simulated: no compiled extension")

        sys.meta_path.insert(0, Block())
        try:
            import ringhash
        except ImportError as e:
            print(e)
        else:
            print("IMPORTED")
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "IMPORTED" not in out
    assert "ringhash._core" in out and "pip install ." in out and "no pure-Python fallback" in out


@pytest.mark.skipif(os.name == "nt", reason="symbol visibility is a GCC/Clang (ELF, Mach-O) matter")
def test_extension_exports_only_its_init_function():
    """Built with -fvisibility=hidden: the C helpers (rh_init, rh_find_crowded, ...) stay
    private to the module, so they cannot clash with another library's symbols."""
    from ringhash import _core

    lib = ctypes.CDLL(_core.__file__)
    assert hasattr(lib, "PyInit__core")
    for name in ("rh_init", "rh_lookup_u64", "rh_find_crowded", "rh_index_build", "rh_murmur3_32"):
        assert not hasattr(lib, name), name
