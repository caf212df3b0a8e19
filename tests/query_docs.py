"""The Cypher blocks of docs/queries.md, by query name."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "queries.md"
BLOCK = re.compile(r"<!-- query: (\w+) -->\n```cypher\n(.*?)\n```", re.DOTALL)


def documented_queries() -> dict[str, str]:
    """Each `<!-- query: NAME -->` marker's following ```cypher block, by NAME."""
    text = DOCS.read_text()
    blocks = BLOCK.findall(text)
    names = [name for name, _ in blocks]
    assert len(names) == len(set(names)), f"a query is documented twice: {names}"
    assert text.count("<!-- query:") == len(blocks), "a query marker is not followed by Cypher"
    return dict(blocks)
