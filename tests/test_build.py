"""No silent fallback: without the compiled core, importing ringhash says how to build it."""

import subprocess
import sys
import textwrap


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
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "IMPORTED" not in out
    assert "ringhash._core" in out and "pip install ." in out and "no pure-Python fallback" in out
