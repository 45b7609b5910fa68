"""One line per check, PASS/WARN/FAIL first; exit 0 when nothing failed, 1 otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TextIO

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class Status(Enum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """The outcome of one check: what was checked and, for a FAIL or WARN, what to do."""

    status: Status
    subject: str
    detail: str = ""
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status.value} {self.subject}"
        if self.detail:
            text += f": {self.detail}"
        if self.fix and self.status is not Status.PASS:
            text += f" -> fix: {self.fix}"
        return text


def passed(subject: str, detail: str = "") -> Check:
    return Check(Status.PASS, subject, detail)


def warned(subject: str, detail: str, fix: str = "") -> Check:
    return Check(Status.WARN, subject, detail, fix)


def failed(subject: str, detail: str, fix: str = "") -> Check:
    return Check(Status.FAIL, subject, detail, fix)


def print_report(checks: Iterable[Check], stream: TextIO | None = None) -> int:
    """Print each check as it arrives (a generator shows progress) and return the exit code."""
    stream = stream or sys.stdout
    exit_code = EXIT_OK
    for check in checks:
        print(check.line(), file=stream, flush=True)
        if check.status is Status.FAIL:
            exit_code = EXIT_FAILED
    return exit_code
