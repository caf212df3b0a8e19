"""docs/queries.md shows each library query's Cypher verbatim, so docs and code cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lineage_stream import queries

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[2] / "docs" / "queries.md"
BLOCK = re.compile(r"<!-- query: (\w+) -->\n```cypher\n(.*?)\n```", re.DOTALL)


def documented_queries() -> dict[str, str]:
    """Each `<!-- query: NAME -->` marker's following ```cypher block, by NAME."""
    text = DOCS.read_text()
    blocks = BLOCK.findall(text)
    names = [name for name, _ in blocks]
    assert len(names) == len(set(names)), f"a query is documented twice: {names}"
    assert text.count("<!-- query:") == len(blocks), "a query marker is not followed by Cypher"
    return dict(blocks)


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
