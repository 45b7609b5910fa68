"""Argument parsing shared by the operator commands: bad usage exits 2, never a traceback."""

from __future__ import annotations

import argparse

from ops.report import EXIT_OK, EXIT_USAGE


class UsageExit(Exception):
    """argparse wanted to exit: --help (0) or bad usage (2)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    try:
        return parser.parse_args(argv)
    except SystemExit as error:
        raise UsageExit(EXIT_OK if error.code in (0, None) else EXIT_USAGE) from None
