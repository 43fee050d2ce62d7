"""The errors the CRM store raises, all derived from :class:`CrmError`."""

from __future__ import annotations

__all__ = ["Conflict", "CrmError", "InvalidInput", "NotFound", "SchemaError"]


class CrmError(Exception):
    """Base of every error the CRM store raises on purpose."""


class InvalidInput(CrmError, ValueError):
    """A value the store refuses: a bad phone number, an oversized field, a malformed
    CSV row. Nothing was written.

    ``field`` names the offending field; ``row`` is the 1-based data row of a CSV
    import (the header is not a row) and ``line`` its first line in the file; both
    are ``None`` outside an import. The message names all three.
    """

    def __init__(
        self,
        field: str | None,
        problem: str,
        *,
        row: int | None = None,
        line: int | None = None,
        source: str | None = None,
    ) -> None:
        self.field = field
        self.problem = problem
        self.row = row
        self.line = line
        self.source = source
        where = []
        if source is not None:
            where.append(source)
        if row is not None:
            where.append(f"row {row}" + (f" (line {line})" if line is not None else ""))
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {problem}" if prefix else problem)

    def at_row(self, row: int, line: int | None, source: str | None) -> InvalidInput:
        """The same problem, located at a row of an import."""
        return InvalidInput(self.field, self.problem, row=row, line=line, source=source)


class NotFound(CrmError, LookupError):
    """No record with that id in that tenant (another tenant's records are never found)."""


class Conflict(CrmError):
    """The write would break a uniqueness rule, e.g. a phone number that already belongs
    to another customer of the tenant. Nothing was written."""


class SchemaError(CrmError):
    """The store's schema cannot be used by this version of agner (too new, or not yet
    migrated and ``migrate=False``)."""
