"""The Cypher blocks of docs/queries.md, by query name."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "queries.md"
BLOCK = re.compile(r"<!-- cypher: (\w+) -->\n```cypher\n(.*?)\n```", re.DOTALL)


def documented_statements() -> dict[str, str]:
    """Each `<!-- cypher: NAME -->` marker's following ```cypher block, by constant NAME.

    A statement shared by several queries is shown under each; every copy must be the same.
    """
    text = DOCS.read_text()
    blocks = BLOCK.findall(text)
    assert text.count("<!-- cypher:") == len(blocks), "a Cypher marker is not followed by Cypher"
    statements: dict[str, str] = {}
    for name, cypher in blocks:
        assert statements.setdefault(name, cypher) == cypher, f"two versions of {name}"
    return statements
