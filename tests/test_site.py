"""The documentation site (docs/, mkdocs.yml): every example on it runs and gives what
it shows, every public name has a docstring and a reference entry, and the site builds
offline with warnings as errors (a broken link fails)."""

from __future__ import annotations

import doctest
import inspect
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

import ringhash

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
needs_tree = pytest.mark.skipif(
    not (ROOT / "mkdocs.yml").is_file(), reason="needs the source tree (docs/, mkdocs.yml)"
)
PAGES = sorted(DOCS.rglob("*.md")) if DOCS.is_dir() else []
#: Pages whose examples talk to Redis: run against a redis-server the tests start.
REDIS_PAGES = {"guides/locks.md", "guides/fleet.md"}


def page_id(p: pathlib.Path) -> str:
    return p.relative_to(DOCS).as_posix()


@needs_tree
@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_page_examples(page, request):
    globs: dict[str, object] = {}
    if page_id(page) in REDIS_PAGES:
        server = request.getfixturevalue("redis_server")
        server.client().flushdb()
        globs["REDIS_URL"] = f"redis://127.0.0.1:{server.port}/0"
    result = doctest.testfile(
        str(page),
        module_relative=False,
        globs=globs,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.failed == 0
    text = page.read_text(encoding="utf-8")
    # a python block is a doctest (run above), never a snippet that nothing runs
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        if not block.startswith("--8<--"):
            assert ">>>" in block, f"{page_id(page)}: a python example the tests do not run"


def console_examples() -> list[tuple[str, str, str]]:
    """(page, command, expected output) of every ``console`` block on the site."""
    out = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"```console\n(.*?)```", text, re.S):
            for cmd, expected in re.findall(r"^\$ (.*)\n((?:(?!\$ ).*\n)*)", block, re.M):
                out.append((page_id(page), cmd, expected))
    return out


@needs_tree
@pytest.mark.parametrize(("page", "command", "expected"), console_examples())
def test_console_examples(page, command, expected, tmp_path):
    """Shell examples that run offline: the output is what the page shows. ``ringhash``
    is this interpreter's ``python -m ringhash``."""
    got = run_command(command, tmp_path)
    assert got.returncode == 0, got.stderr
    strip = lambda text: [line.rstrip() for line in text.splitlines()]  # noqa: E731
    assert strip(got.stdout) == strip(expected), page


def run_command(command: str, cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """``command`` with ``ringhash`` as this interpreter's ``python -m ringhash``, on an
    80-column, colourless terminal (what the pages show)."""
    run = re.sub(r"(^|\| )ringhash ", rf"\1{shlex.quote(sys.executable)} -m ringhash ", command)
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    return subprocess.run(
        run, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def shell_examples() -> list[tuple[str, str]]:
    """(page, command) of every ``sh`` line on the site that runs offline as written: a
    ``ringhash`` command with no optional parts (``[...]``), input files (``@list``,
    configs) or servers."""
    out = []
    for page in PAGES:
        if page.name == "README.md":
            continue
        for block in re.findall(r"```sh\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
            for line in block.splitlines():
                cmd = line.split("  #")[0].strip()
                if cmd.startswith("ringhash ") and not re.search(
                    r"\[|@|\.cfg|\.conf|\.yml|redis://|\.\.\.", cmd
                ):
                    out.append((page_id(page), cmd))
    return out


@needs_tree
@pytest.mark.parametrize(("page", "command"), shell_examples())
def test_shell_examples_run(page, command, tmp_path):
    """Commands shown without their output run and succeed as written."""
    pytest.importorskip("matplotlib", reason="matplotlib (the plot extra) is not installed")
    got = run_command(command, tmp_path)
    assert got.returncode == 0, f"{page}: {command}\n{got.stderr}"


def public_objects():  # type: ignore[no-untyped-def]
    import ringhash.fleet
    import ringhash.redis_locks

    for module in (ringhash, ringhash.fleet, ringhash.redis_locks):
        for name in module.__all__:
            if name != "__version__":
                yield f"{module.__name__}.{name}", getattr(module, name)


def test_every_public_name_has_a_docstring():
    missing = []
    for qual, obj in public_objects():
        if not isinstance(obj, int) and not (obj.__doc__ or "").strip():
            missing.append(qual)
        if not inspect.isclass(obj):
            continue
        # public methods and properties, inherited ones included (the reference shows them),
        # each as the class resolves it (an override's docstring is the one shown)
        for attr in dir(obj):
            owner = next((k for k in obj.__mro__ if attr in vars(k)), None)
            if attr.startswith("_") or owner is None or owner.__module__ == "builtins":
                continue
            val = vars(owner)[attr]
            fn = val.fget if isinstance(val, property) else getattr(val, "__func__", val)
            if (callable(fn) or isinstance(val, property)) and not (fn.__doc__ or "").strip():
                missing.append(f"{qual}.{attr} (from {owner.__qualname__})")
    assert not missing, "public names without a docstring: " + ", ".join(sorted(set(missing)))


@needs_tree
def test_every_public_name_has_a_reference_entry():
    entries = set()
    for page in (DOCS / "reference").glob("*.md"):
        entries |= set(re.findall(r"^::: ([\w.]+)", page.read_text(encoding="utf-8"), re.M))
    for qual, _ in public_objects():
        module = qual.rsplit(".", 1)[0]
        assert qual in entries or module in entries and module != "ringhash", qual


@needs_tree
def test_cli_reference_covers_every_command():
    import argparse

    from ringhash.cli import _build_parser

    text = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    sub = next(a for a in _build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in sub.choices:
        assert f"<!-- ringhash --help {command} -->" in text, command


@needs_tree
@pytest.mark.timeout(300)
def test_site_builds_offline_without_warnings(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install '.[docs]')")
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    got = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert got.returncode == 0, got.stderr[-3000:]
    assert "WARNING" not in got.stderr, got.stderr[-3000:]
    built = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.html")}
    for page in PAGES:
        if page.name != "README.md":
            assert page_id(page).replace(".md", ".html") in built, page
    reference = (tmp_path / "reference" / "ringhash.html").read_text(encoding="utf-8")
    for name in ringhash.__all__:
        if name != "__version__":
            assert f'id="ringhash.{name}"' in reference, name
    assert "usage: ringhash route" in (tmp_path / "reference" / "cli.html").read_text("utf-8")
