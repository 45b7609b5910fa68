"""One error type for every bad setting, so app.py can print it and exit without a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    key: str
    value: Any
    message: str
    allowed: str = ""

    def __str__(self) -> str:
        text = f"{self.key}={self.value}: {self.message}"
        return f"{text} (allowed: {self.allowed})" if self.allowed else text


class ConfigError(ValueError):
    """All problems found in one configuration, one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))
