"""warehouse/README.md documents every view, table and column of a freshly migrated warehouse.

People who build dashboards read the README instead of the migrations, so it must never drift from the schema:
each object has a `### `name`` section whose column table lists exactly the object's columns, with their types
and a meaning. A new migration that adds, drops or retypes anything fails here until the README says so.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import warehouse
from warehouse.db import available_migrations

README = Path(__file__).resolve().parents[1] / "warehouse" / "README.md"
_HEADING = re.compile(r"^###\s+`?([A-Za-z_][A-Za-z0-9_]*)`?(?:\s|$)")


def _type_name(data_type: str) -> str:
    # the README writes the short DuckDB spelling of the one long type name
    return data_type.replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_readme(text: str) -> dict[str, list[tuple[str, str, str]]]:
    """`### name` sections -> the rows (column, type, meaning) of the column table under each heading."""
    sections: dict[str, list[tuple[str, str, str]]] = {}
    current: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            m = _HEADING.match(line)
            current = m.group(1) if m else None
            if current is not None:
                assert current not in sections, f"README line {number}: a second section for {current}"
                sections[current] = []
            continue
        if current is None or not line.lstrip().startswith("|"):
            continue
        cells = _cells(line)
        if cells[0] == "column" or set(cells[0]) <= set("-: "):
            continue  # the header row and the |---| separator
        assert len(cells) == 3, f"README line {number}: a column row needs | column | type | meaning |: {line!r}"
        sections[current].append((cells[0].strip("`"), cells[1].strip("`"), cells[2]))
    return sections


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """name -> (table_type, [(column, type)]) of every table and view of a fresh, fully migrated warehouse."""
    con = warehouse.connect(tmp_path_factory.mktemp("readme") / "w.duckdb")
    try:
        rows = con.execute(
            """SELECT t.table_name, t.table_type, c.column_name, c.data_type
               FROM information_schema.tables t
               JOIN information_schema.columns c
                 ON c.table_catalog = t.table_catalog AND c.table_schema = t.table_schema
                AND c.table_name = t.table_name
               WHERE t.table_catalog = current_database() AND t.table_schema = 'main'  -- temp objects live elsewhere
               ORDER BY t.table_name, c.ordinal_position"""
        ).fetchall()
        (applied,) = con.execute("SELECT max(number) FROM _migrations").fetchone()
    finally:
        con.close()
    assert applied == max(m.number for m in available_migrations()), "the fixture warehouse is not fully migrated"
    out: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for name, table_type, column, data_type in rows:
        out.setdefault(name, (table_type, []))[1].append((column, _type_name(data_type)))
    return out


@pytest.fixture(scope="module")
def sections() -> dict[str, list[tuple[str, str, str]]]:
    return parse_readme(README.read_text(encoding="utf-8"))


def test_schema_has_the_objects_dashboards_rely_on(schema):
    # guards the fixture itself: an empty or half-read schema would make the checks below pass vacuously
    assert "_migrations" in schema and "records" in schema and "v_current_estimates" in schema
    assert sum(t == "VIEW" for t, _ in schema.values()) >= 10
    assert sum(t == "BASE TABLE" for t, _ in schema.values()) >= 20


def test_every_table_and_view_has_a_section(schema, sections):
    missing = sorted(set(schema) - set(sections))
    assert not missing, f"warehouse/README.md has no `### name` section for: {', '.join(missing)}"


def test_readme_documents_no_object_that_does_not_exist(schema, sections):
    stale = sorted(set(sections) - set(schema))
    assert not stale, f"warehouse/README.md documents objects a fresh warehouse does not have: {', '.join(stale)}"


def test_every_column_is_documented_under_its_object(schema, sections):
    problems = []
    for name, (_, columns) in sorted(schema.items()):
        documented = {c: (t, m) for c, t, m in sections.get(name, [])}
        for column, data_type in columns:
            if column not in documented:
                problems.append(f"{name}.{column} ({data_type}) is not in its README column table")
            elif documented[column][0] != data_type:
                problems.append(f"{name}.{column}: README says {documented[column][0]}, the schema says {data_type}")
            elif not documented[column][1]:
                problems.append(f"{name}.{column}: the README gives no meaning")
        gone = sorted(set(documented) - {c for c, _ in columns})
        problems += [f"{name}.{c} is documented but the schema has no such column" for c in gone]
    assert not problems, "warehouse/README.md is out of step with the schema:\n" + "\n".join(problems)


def test_views_come_before_tables(schema, sections):
    # dashboards should read views: the reference lists them first
    order = list(sections)
    kinds = [schema[n][0] for n in order if n in schema]
    assert kinds == sorted(kinds, key=lambda t: t != "VIEW"), "views must come before tables in the README"


def test_parser_reads_sections_and_rejects_malformed_rows():
    text = ("## Views\n\n### `v_x`\n\n*view*\n\n| column | type | meaning |\n|---|---|---|\n"
            "| a | INTEGER | the a |\n| b | VARCHAR |  |\n\n### `t_y` — table\n\n| column | type | meaning |\n"
            "|---|---|---|\n| c | JSON | see `x` |\n")
    assert parse_readme(text) == {"v_x": [("a", "INTEGER", "the a"), ("b", "VARCHAR", "")],
                                  "t_y": [("c", "JSON", "see `x`")]}
    with pytest.raises(AssertionError, match="line 3"):
        parse_readme("### `v_x`\n| column | type | meaning |\n| a | INTEGER |\n")
