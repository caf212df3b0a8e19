"""lineage-stream: OpenLineage run events from Kafka, paired per run, upserted into Neo4j."""

__version__ = "0.1.0"
