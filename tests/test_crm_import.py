"""Customer CSV import: columns, updates, and bad input refused whole, on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agner.crm import ImportResult, InvalidInput, StoreOptions

pytest_plugins = ["_pg"]

GOOD = """\
Name,Phone,Email,Tier,Language,account,segment
Ann Martin,+33 1 42 68 53 00,ann@example.com,gold,fr,A-1,retail
Bob Stone,+33612345670;+33612345671,,silver,,A-2,
"Cole, Jr.",,cole@example.com,,en-gb,A-3,"multi
line"
"""


def write(tmp_path: Path, text: str, name: str = "customers.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_import_reads_every_column(store: Any, tmp_path: Path) -> None:
    res = store.import_customers("acme", write(tmp_path, GOOD), now_us=5)
    assert res == ImportResult(rows=3, created=3, updated=0, leads_converted=0)
    ann = store.find_customer("acme", "+33142685300")
    assert (ann.name, ann.emails, ann.tier, ann.language) == (
        "Ann Martin",
        ("ann@example.com",),
        "gold",
        "fr",
    )
    assert ann.attributes == {"account": "A-1", "segment": "retail"}
    bob = store.find_customer("acme", "+33612345671")
    assert bob.phones == ("+33612345670", "+33612345671") and bob.tier == "silver"
    assert bob.attributes == {"account": "A-2"}
    cole = store.find_customer("acme", "cole@example.com")
    assert (cole.name, cole.tier, cole.language) == ("Cole, Jr.", "standard", "en-GB")
    assert cole.attributes == {"account": "A-3", "segment": "multi\nline"}
    assert store.lookup("acme", "+33142685300").priority == 2


def test_reimport_updates_and_converts_leads(store: Any, tmp_path: Path) -> None:
    store.import_customers("acme", write(tmp_path, GOOD))
    lead = store.create_lead("acme", phone="+33612345679")
    again = GOOD.replace("Ann Martin", "Ann Martin-Roy").replace(",A-1,retail", ",A-9,")
    again += "Dee,+33612345679,,,,A-4,\n"
    res = store.import_customers("acme", write(tmp_path, again, "again.csv"))
    assert res == ImportResult(rows=4, created=1, updated=3, leads_converted=1)
    ann = store.find_customer("acme", "ann@example.com")
    assert ann.name == "Ann Martin-Roy"
    assert ann.attributes == {"account": "A-9", "segment": "retail"}  # added to, not dropped
    dee = store.find_customer("acme", "+33612345679")
    assert store.get_lead("acme", lead.id).converted_to == dee.id
    assert store.count("acme", "customers") == 4


def test_import_from_an_open_file_with_a_region(open_crm: Any, tmp_path: Path) -> None:
    s = open_crm()
    p = write(tmp_path, "name,phone\nEd,020 7946 0018\n")
    with open(p, encoding="utf-8") as f:
        assert s.import_customers("acme", f, region="GB").created == 1
    assert s.find_customer("acme", "+442079460018") is not None


BAD = [
    # (file body, row, line, field, words in the message)
    ("name,phone\nAnn,+33142685300\nBob,call me\n", 2, 3, "phone", "not a phone number"),
    ("name,phone\nAnn,+33142685300\nBob,+33 1 23\n", 2, 3, "phone", "not a valid phone"),
    ("name,phone\nAnn,+33142685300\nBob,+1 555 0100\n", 2, 3, "phone", "not a valid phone"),
    ("name,email\nAnn,ann@example.com\nBob,bob@\n", 2, 3, "email", "not a valid e-mail"),
    ("name,phone\nAnn,+33142685300\n" + "B" * 201 + ",+33612345670\n", 2, 3, "name", "limit"),
    ("name,phone,note\nAnn,+33142685300," + "x" * 1001 + "\n", 1, 2, "note", "limit"),
    ("name,phone\nAnn,+33142685300\nBob,+33612345670,extra\n", 2, 3, None, "3 fields"),
    ("name,phone\nAnn,+33142685300\nBob\n", 2, 3, None, "1 field where"),
    ('name,phone\nAnn,+33142685300\n"Bob,+33612345670\n', 2, 3, None, "malformed CSV"),
    ("name,phone\nAnn,+33142685300\n,+33612345670\n", 2, 3, "name", "required"),
    ("name,phone\nAnn,+33142685300\nBob,\n", 2, 3, "phone", "needs a phone"),
    ("name,phone,tier\nAnn,+33142685300,\nBob,+33612345670,diamond\n", 2, 3, "tier", "diamond"),
    ("name,phone\nAnn,+33142685300\nBob,+33 1 42 68 53 00\n", 2, 3, "phone", "also on row 1"),
    ('name,phone\n"A\nnn",+33142685300\nBob,+33 1\n', 2, 4, "phone", "too short"),
]


@pytest.mark.parametrize(
    ("body", "row", "line", "field", "words"), BAD, ids=[f"{b[3]}-{b[4]}" for b in BAD]
)
def test_bad_row_is_named_and_nothing_is_stored(
    store: Any, tmp_path: Path, body: str, row: int, line: int, field: str | None, words: str
) -> None:
    store.create_customer("acme", name="Kept", phones=["+33699999999"], tier="gold")
    path = write(tmp_path, body)
    with pytest.raises(InvalidInput) as e:
        store.import_customers("acme", path)
    err = e.value
    assert (err.row, err.line, err.field) == (row, line, field)
    assert str(path) in str(err) and f"row {row} (line {line})" in str(err)
    assert words in str(err)
    assert [c.name for c in store.customers("acme")] == ["Kept"]
    assert store.lookup("acme", "+33699999999").priority == 2


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ("", None, "empty"),
        ("phone\n+33142685300\n", "name", "no 'name' column"),
        ("name,tier\nAnn,gold\n", "phone", "'phone' or an 'email'"),
        ("name,phone,name\nAnn,+33142685300,x\n", "name", "twice"),
        ("name,,phone\nAnn,x,+33142685300\n", None, "column 2 has no name"),
    ],
)
def test_bad_header_is_refused(
    store: Any, tmp_path: Path, body: str, field: str | None, words: str
) -> None:
    with pytest.raises(InvalidInput) as e:
        store.import_customers("acme", write(tmp_path, body))
    assert e.value.field == field and e.value.row is None
    assert words in str(e.value)
    assert store.count("acme", "customers") == 0


def test_undecodable_bytes_name_the_line(store: Any, tmp_path: Path) -> None:
    p = tmp_path / "latin1.csv"
    p.write_bytes(b"name,phone\nAnn,+33142685300\nJos\xe9,+33612345670\n")
    with pytest.raises(InvalidInput, match="malformed CSV"):
        store.import_customers("acme", p)
    assert store.count("acme", "customers") == 0


def test_missing_file_is_a_clear_error(store: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        store.import_customers("acme", tmp_path / "nope.csv")


def test_conflict_with_stored_customers_is_refused_whole(store: Any, tmp_path: Path) -> None:
    a = store.create_customer("acme", name="Ann", phones=["+33142685300"])
    b = store.create_customer("acme", name="Bob", emails=["bob@example.com"])
    body = (
        "name,phone,email\nNew,+33612345670,\n"
        "Mix,+33142685300,bob@example.com\n"  # Ann's number and Bob's address
    )
    with pytest.raises(InvalidInput) as e:
        store.import_customers("acme", write(tmp_path, body))
    assert (e.value.row, e.value.field) == (2, "email")
    assert f"belongs to customer {b.id}" in str(e.value)
    assert store.count("acme", "customers") == 2
    assert store.find_customer("acme", "+33612345670") is None
    assert store.get_customer("acme", a.id).name == "Ann"
    # Two rows of one file updating the same stored customer.
    body = "name,phone,email\nAnn 1,+33142685300,\nAnn 2,,ann@example.com\n"
    store.update_customer("acme", a.id, emails=["ann@example.com"])
    with pytest.raises(InvalidInput) as e:
        store.import_customers("acme", write(tmp_path, body))
    assert (e.value.row, e.value.field) == (2, "email")
    assert "also updated by row 1" in str(e.value)
    assert store.get_customer("acme", a.id).name == "Ann"


def test_import_is_per_tenant(store: Any, tmp_path: Path) -> None:
    store.import_customers("acme", write(tmp_path, GOOD))
    res = store.import_customers("globex", write(tmp_path, GOOD))
    assert (res.created, res.updated) == (3, 0)
    a = store.find_customer("acme", "ann@example.com")
    g = store.find_customer("globex", "ann@example.com")
    assert a.id != g.id


def test_large_import_spans_batches(store: Any, tmp_path: Path) -> None:
    # 2,100 rows: on PostgreSQL a bulk load, whose statistics are refreshed at 2,000.
    rows = "".join(f"c{k},+336{10_000_000 + k},\n" for k in range(2_100))
    res = store.import_customers("acme", write(tmp_path, "name,phone,tier\n" + rows))
    assert (res.rows, res.created) == (2_100, 2_100)
    assert store.count("acme", "customers") == 2_100
    assert store.find_customer("acme", "+33610002099").name == "c2099"
    bad = rows + "oops,+33 1,\n"
    with pytest.raises(InvalidInput) as e:
        store.import_customers("globex", write(tmp_path, "name,phone,tier\n" + bad, "b.csv"))
    assert e.value.row == 2_101
    assert store.count("globex", "customers") == 0


def test_options_apply_to_imports(open_crm: Any, tmp_path: Path) -> None:
    s = open_crm(StoreOptions(tiers={"a": 1, "b": 2}, default_tier="a", default_region="FR"))
    res = s.import_customers("acme", write(tmp_path, "name,phone,tier\nAnn,01 42 68 53 00,B\n"))
    assert res.created == 1
    assert s.find_customer("acme", "+33142685300").tier == "b"


def test_reimport_keeps_what_empty_cells_do_not_say(store: Any, tmp_path: Path) -> None:
    store.import_customers("acme", write(tmp_path, GOOD))
    body = "name,phone,tier,language,account\nAnn M.,+33142685300,,,\n"
    res = store.import_customers("acme", write(tmp_path, body, "thin.csv"))
    assert (res.created, res.updated) == (0, 1)
    ann = store.find_customer("acme", "+33142685300")
    assert (ann.name, ann.tier, ann.language) == ("Ann M.", "gold", "fr")
    assert ann.attributes == {"account": "A-1", "segment": "retail"}
    assert ann.emails == ("ann@example.com",)


def test_errors_name_an_open_file_by_its_name(store: Any, tmp_path: Path) -> None:
    store.create_customer("acme", name="Ann", phones=["+33142685300"])
    store.create_customer("acme", name="Bob", emails=["bob@example.com"])
    q = write(tmp_path, "name,phone,email\nNew,+33612345670,\nMix,+33142685300,bob@example.com\n")
    with open(q, encoding="utf-8") as f, pytest.raises(InvalidInput) as e:
        store.import_customers("acme", f)
    assert str(e.value).startswith(f"{q}, row 2 (line 3), field 'email': bob@example.com")
