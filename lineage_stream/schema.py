"""Start-up check of Neo4j: wait until it answers, then create constraints and indexes."""

from __future__ import annotations

import logging
import time

from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, ServiceUnavailable, SessionExpired

from lineage_stream import cypher
from lineage_stream.errors import GraphUnavailable, certificate_problem, neo4j_unreachable
from lineage_stream.settings import Settings

log = logging.getLogger(__name__)


def ensure_schema(settings: Settings, wait_s: float = 120.0) -> None:
    deadline = time.monotonic() + wait_s
    auth = (settings.neo4j_user, settings.neo4j_password.get_secret_value())
    with GraphDatabase.driver(
        settings.neo4j_uri, auth=auth, notifications_min_severity="OFF"
    ) as driver:
        while True:
            try:
                with driver.session(database=settings.neo4j_database) as session:
                    for statement in cypher.SCHEMA:
                        session.run(statement).consume()
                return
            except AuthError as exc:
                raise GraphUnavailable(
                    f"Neo4j at {settings.neo4j_uri} refused user {settings.neo4j_user!r}: "
                    "check LINEAGE_NEO4J_USER and LINEAGE_NEO4J_PASSWORD"
                ) from exc
            except (ServiceUnavailable, SessionExpired) as exc:
                if certificate_problem(exc) is not None:
                    # Waiting will not make the certificate verify.
                    raise neo4j_unreachable(exc, settings.neo4j_uri) from exc
                if time.monotonic() > deadline:
                    raise GraphUnavailable(
                        f"Neo4j at {settings.neo4j_uri} did not answer within {wait_s:.0f} s: {exc}"
                    ) from exc
                log.warning("waiting for Neo4j at %s: %s", settings.neo4j_uri, exc)
                time.sleep(2)
