"""``python -m tests.fuzz.run TARGET [atheris/libFuzzer options]``: run one target
under atheris, from its seed corpus (tests/fuzz/corpus/TARGET); findings are
written where libFuzzer writes them (``-artifact_prefix=``)."""

import sys

import atheris

with atheris.instrument_imports():
    from tests.fuzz.targets import TARGETS


def main() -> None:
    name = sys.argv.pop(1)
    atheris.Setup(sys.argv, TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
