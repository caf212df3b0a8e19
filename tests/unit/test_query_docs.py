"""docs/queries.md shows each library query's Cypher verbatim, so docs and code cannot drift."""

from __future__ import annotations

import pytest

from lineage_stream import queries
from tests.query_docs import DOCS, documented_statements

pytestmark = pytest.mark.unit


def test_every_statement_of_every_query_is_documented_verbatim() -> None:
    documented = documented_statements()
    code = {
        name: cypher
        for named in queries.QUERIES.values()
        for name, cypher in named.statements.items()
    }
    assert sorted(documented) == sorted(code)
    for name, cypher in code.items():
        assert documented[name] == cypher.strip(), f"docs/queries.md differs on {name}"


def test_every_query_has_its_own_section_listing_its_statements() -> None:
    text = DOCS.read_text()
    for name, named in queries.QUERIES.items():
        section = text.split(f"### `{name}`\n", 1)[1].split("\n### ", 1)[0]
        for statement in named.statements:
            assert f"<!-- cypher: {statement} -->" in section, (name, statement)


def test_every_query_function_has_a_docstring_with_an_example() -> None:
    for name, named in queries.QUERIES.items():
        assert named.run.__doc__ is not None
        assert "Example:" in named.run.__doc__, name
        assert f">>> {name}(graph" in named.run.__doc__, name
