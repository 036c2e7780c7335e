"""Domain errors raised by deciders; the HTTP layer maps each kind to one status code."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a decider raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidValue(DomainError):
    """A value in the command is not acceptable whatever the state (HTTP 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class RuleViolation(DomainError):
    """The aggregate's current state forbids the command (HTTP 409)."""

    def __init__(self, rule: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.rule = rule
        self.details = details
        """Figures behind the refusal (e.g. a cap and the current total), JSON-ready."""


class NotPermitted(DomainError):
    """The actor may not do this (HTTP 403), e.g. approve without being the head."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
