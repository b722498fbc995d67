"""MkDocs hooks (mkdocs.yml ``hooks:``): a page line ``<!-- ringhash --help [COMMAND] -->``
becomes that command's ``--help`` text, taken from the CLI's own argparse parser at build
time, so the reference cannot drift from the program."""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

HELP = re.compile(r"^<!-- ringhash --help ?([a-z-]*) -->$", re.M)


def help_text(command: str) -> str:
    from ringhash.cli import _build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: fix the width
    parser = _build_parser()
    if command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[command]
    return parser.format_help()


def on_page_markdown(markdown: str, **_: Any) -> str:
    return HELP.sub(lambda m: f"```text\n{help_text(m.group(1)).rstrip()}\n```", markdown)
