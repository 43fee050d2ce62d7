"""Reading a customers CSV into checked rows, before anything is written.

The file has a header row. Known columns (any case): ``name`` (required),
``phone`` and ``email`` (one of them per row; several values separated by ``;``),
``tier`` and ``language``. Every other column is kept as a text attribute. Errors
name the file, the data row (1-based, the header is not counted), its line in the
file and the field.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from typing import NamedTuple, TextIO

from agner.crm import validate
from agner.crm.errors import InvalidInput
from agner.crm.models import StoreOptions

__all__ = ["CustomerRow", "read_customers"]

KNOWN = ("name", "phone", "email", "tier", "language")
#: Separator of several phone numbers or addresses in one cell.
MULTI = ";"


class CustomerRow(NamedTuple):
    row: int
    line: int
    name: str
    phones: tuple[str, ...]
    emails: tuple[str, ...]
    tier: str | None  # None: the cell was empty
    language: str | None
    attributes: dict[str, str]


def read_customers(
    source: str | os.PathLike[str] | TextIO, options: StoreOptions, region: str | None = None
) -> list[CustomerRow]:
    """Every row of the file, checked and normalized; raises :class:`InvalidInput` at
    the first bad one. Numbers without a country code are read in ``region`` (else
    the store's ``default_region``). Also refuses a number or address given twice."""
    region = region or options.default_region
    name = source_name(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(name, encoding="utf-8-sig", newline="") as f:
                return _read(f, name, options, region)
        except OSError as exc:
            raise InvalidInput(None, f"cannot read {name}: {exc.strerror}") from None
    return _read(source, name, options, region)


def source_name(source: str | os.PathLike[str] | TextIO) -> str:
    """How errors name the file: its path, or an open file's name."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "<input>"))


def _records(f: TextIO, source: str) -> Iterator[tuple[int, int, list[str]]]:
    """(row, first line, cells) for each record; csv errors become InvalidInput."""
    reader = csv.reader(f, strict=True)
    row, line = 0, 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InvalidInput(
                None, f"malformed CSV: {exc}", row=row or None, line=reader.line_num, source=source
            ) from None
        yield row, line, cells
        row, line = row + 1, reader.line_num + 1


def _read(f: TextIO, source: str, options: StoreOptions, region: str | None) -> list[CustomerRow]:
    records = _records(f, source)
    first = next(records, None)
    if first is None:
        raise InvalidInput(None, "the file is empty (a header row is needed)", source=source)
    header = [h.strip().lower() if h.strip().lower() in KNOWN else h.strip() for h in first[2]]
    _check_header(header, source)
    out: list[CustomerRow] = []
    seen: dict[tuple[str, str], int] = {}
    for row, line, cells in records:
        if not any(c.strip() for c in cells):
            continue  # blank lines are not rows worth refusing
        if len(cells) != len(header):
            raise InvalidInput(
                None,
                f"{len(cells)} field{'' if len(cells) == 1 else 's'} where the header has "
                f"{len(header)}",
                row=row,
                line=line,
                source=source,
            )
        try:
            parsed = _row(dict(zip(header, cells, strict=True)), row, line, options, region)
        except InvalidInput as exc:
            raise exc.at_row(row, line, source) from None
        for field, values in (("phone", parsed.phones), ("email", parsed.emails)):
            for v in values:
                earlier = seen.setdefault((field, v), row)
                if earlier != row:
                    raise InvalidInput(
                        field, f"{v} is also on row {earlier}", row=row, line=line, source=source
                    )
        out.append(parsed)
    return out


def _check_header(header: list[str], source: str) -> None:
    for i, h in enumerate(header):
        if not h:
            raise InvalidInput(None, f"header column {i + 1} has no name", row=None, source=source)
        if header.index(h) != i:
            raise InvalidInput(h, "appears twice in the header", source=source)
    if "name" not in header:
        raise InvalidInput("name", "the header has no 'name' column", source=source)
    if "phone" not in header and "email" not in header:
        raise InvalidInput(
            "phone", "the header needs a 'phone' or an 'email' column", source=source
        )


def _split(cell: str | None) -> list[str]:
    return [v for v in (cell or "").split(MULTI) if v.strip()]


def _row(
    cells: dict[str, str], row: int, line: int, options: StoreOptions, region: str | None
) -> CustomerRow:
    name = validate.text(cells.get("name"), "name", required=True)
    assert name is not None
    phones = validate.phones(_split(cells.get("phone")), region)
    emails = validate.emails(_split(cells.get("email")))
    if not phones and not emails:
        raise InvalidInput("phone", "a customer needs a phone number or an e-mail address")
    return CustomerRow(
        row=row,
        line=line,
        name=name,
        phones=phones,
        emails=emails,
        tier=validate.tier(cells["tier"], options) if cells.get("tier", "").strip() else None,
        language=validate.language(cells.get("language")),
        attributes=validate.attributes({k: v for k, v in cells.items() if k not in KNOWN}),
    )
