"""docs/queries.md shows each library query's Cypher verbatim, so docs and code cannot drift."""

from __future__ import annotations

import pytest

from lineage_stream import queries
from tests.query_docs import documented_queries

pytestmark = pytest.mark.unit


def test_every_query_is_documented_with_its_exact_cypher() -> None:
    documented = documented_queries()
    assert sorted(documented) == sorted(queries.QUERIES)
    for name, named in queries.QUERIES.items():
        assert documented[name] == named.cypher.strip(), f"docs/queries.md differs on {name}"


def test_every_query_function_has_a_docstring_with_an_example() -> None:
    for name, named in queries.QUERIES.items():
        assert named.run.__doc__ is not None
        assert "Example:" in named.run.__doc__, name
        assert f">>> {name}(graph" in named.run.__doc__, name
