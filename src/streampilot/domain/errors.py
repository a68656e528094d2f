"""Errors that name the field a user must fix."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str
    line: int | None = None
    column: int | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"field": self.field, "message": self.message}
        if self.line is not None:
            out["line"] = self.line
        if self.column is not None:
            out["column"] = self.column
        return out


@dataclass
class SpecError(Exception):
    """One or more fields of an application's settings are invalid."""

    problems: list[FieldProblem] = field(default_factory=list)

    @classmethod
    def one(cls, field_name: str, message: str, line: int | None = None, column: int | None = None) -> SpecError:
        return cls([FieldProblem(field_name, message, line, column)])

    def __str__(self) -> str:
        return "; ".join(f"{p.field}: {p.message}" for p in self.problems)
