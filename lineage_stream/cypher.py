"""Every Cypher statement lineage-stream writes, as named constants.

Values always travel as parameters; each upsert takes one list parameter `$rows` and UNWINDs it.
Upserts keep the newest value by the eventTime stored beside it, so batches may arrive in any
order. The Process upsert applies the pairing join (see `pairing.merge`) inside the database.

Several workers may write one node at once. A statement that compares a stored value before it
sets one write-locks the node first (`SET n._lock`, removed within the statement): under
read-committed isolation both transactions would otherwise read the old value, and the older
write could land last.

Every statement finds its nodes by a uniqueness constraint (MERGE, or MATCH with an index hint
where another index covers the key's properties) or by expanding from one: planned on a small or
empty graph, Neo4j's statistics would otherwise favour the Process.state or name indexes
(tests/integration/test_plans.py).
"""

from __future__ import annotations

from typing import Final

JOB: Final = "Job"
PROCESS: Final = "Process"
DATASET: Final = "Dataset"
FIELD: Final = "Field"
DATASET_ALIAS: Final = "DatasetAlias"

HAS_RUN: Final = "HAS_RUN"
INPUT_TO: Final = "INPUT_TO"
OUTPUT_TO: Final = "OUTPUT_TO"
CONSUMED_BY: Final = "CONSUMED_BY"
PRODUCES: Final = "PRODUCES"
CHILD_OF: Final = "CHILD_OF"
HAS_FIELD: Final = "HAS_FIELD"
DERIVES: Final = "DERIVES"
ALIAS_OF: Final = "ALIAS_OF"

SCHEMA: Final = (
    "CREATE CONSTRAINT job_key IF NOT EXISTS FOR (j:Job) REQUIRE (j.namespace, j.name) IS UNIQUE",
    "CREATE CONSTRAINT process_key IF NOT EXISTS FOR (p:Process) REQUIRE p.runId IS UNIQUE",
    "CREATE CONSTRAINT dataset_key IF NOT EXISTS "
    "FOR (d:Dataset) REQUIRE (d.namespace, d.name) IS UNIQUE",
    "CREATE CONSTRAINT field_key IF NOT EXISTS "
    "FOR (f:Field) REQUIRE (f.namespace, f.name, f.field) IS UNIQUE",
    "CREATE CONSTRAINT dataset_alias_key IF NOT EXISTS "
    "FOR (a:DatasetAlias) REQUIRE a.alias IS UNIQUE",
    "CREATE INDEX process_state IF NOT EXISTS FOR (p:Process) ON (p.state)",
    "CREATE INDEX process_started IF NOT EXISTS FOR (p:Process) ON (p.startedAt)",
    "CREATE INDEX job_name IF NOT EXISTS FOR (j:Job) ON (j.name)",
    "CREATE INDEX dataset_name IF NOT EXISTS FOR (d:Dataset) ON (d.name)",
)


def _rows_with_times(*keys: str) -> str:
    """`UNWIND $rows AS row`, with the named timestamps, sent as ISO-8601 text, made DateTimes.

    The driver encodes a Python datetime in pure Python at ~100 us a value, more than the rest
    of a row costs; Neo4j parses the text for next to nothing. Keys are constants, not values.
    """
    times = ", ".join(f"{key}: datetime(wire.{key})" for key in keys)
    return f"UNWIND $rows AS wire\nWITH wire {{.*, {times}}} AS row\n"


RESOLVE_ALIASES: Final = """
UNWIND $aliases AS alias
MATCH (:DatasetAlias {alias: alias})-[:ALIAS_OF]->(d:Dataset)
RETURN alias, d.namespace AS namespace, d.name AS name
ORDER BY alias, namespace DESC, name DESC
"""

# Locked (see above): with LINEAGE_REPARTITION_BY_RUN a job's runs reach several workers.
UPSERT_JOBS: Final = (
    _rows_with_times("jobTypeAt", "sqlAt", "descriptionAt", "ownersAt")
    + """MERGE (j:Job {namespace: row.namespace, name: row.name})
SET j._lock = true
WITH j, row,
  row.jobTypeAt IS NOT NULL AND (j.jobTypeAt IS NULL OR row.jobTypeAt >= j.jobTypeAt) AS newType,
  row.sqlAt IS NOT NULL AND (j.sqlAt IS NULL OR row.sqlAt >= j.sqlAt) AS newSql,
  row.descriptionAt IS NOT NULL
    AND (j.descriptionAt IS NULL OR row.descriptionAt >= j.descriptionAt) AS newDescription,
  row.ownersAt IS NOT NULL AND (j.ownersAt IS NULL OR row.ownersAt >= j.ownersAt) AS newOwners
SET j.type = CASE WHEN newType THEN row.type ELSE j.type END,
    j.integration = CASE WHEN newType THEN row.integration ELSE j.integration END,
    j.processingType = CASE WHEN newType THEN row.processingType ELSE j.processingType END,
    j.jobTypeAt = CASE WHEN newType THEN row.jobTypeAt ELSE j.jobTypeAt END,
    j.sql = CASE WHEN newSql THEN row.sql ELSE j.sql END,
    j.sqlAt = CASE WHEN newSql THEN row.sqlAt ELSE j.sqlAt END,
    j.description = CASE WHEN newDescription THEN row.description ELSE j.description END,
    j.descriptionAt = CASE WHEN newDescription THEN row.descriptionAt ELSE j.descriptionAt END,
    j.owners = CASE WHEN newOwners THEN row.owners ELSE j.owners END,
    j.ownersAt = CASE WHEN newOwners THEN row.ownersAt ELSE j.ownersAt END
REMOVE j._lock
"""
)

# Locked (see above): workers share datasets.
UPSERT_DATASETS: Final = (
    _rows_with_times("schemaAt", "dataSourceAt")
    + """MERGE (d:Dataset {namespace: row.namespace, name: row.name})
SET d._lock = true
WITH d, row,
  row.schemaAt IS NOT NULL AND (d.schemaAt IS NULL OR row.schemaAt >= d.schemaAt) AS newSchema,
  row.dataSourceAt IS NOT NULL
    AND (d.dataSourceAt IS NULL OR row.dataSourceAt >= d.dataSourceAt) AS newSource
SET d.fields = CASE WHEN newSchema THEN row.fields ELSE d.fields END,
    d.fieldTypes = CASE WHEN newSchema THEN row.fieldTypes ELSE d.fieldTypes END,
    d.schemaAt = CASE WHEN newSchema THEN row.schemaAt ELSE d.schemaAt END,
    d.dataSource = CASE WHEN newSource THEN row.dataSource ELSE d.dataSource END,
    d.dataSourceAt = CASE WHEN newSource THEN row.dataSourceAt ELSE d.dataSourceAt END,
    d.aliases = reduce(acc = coalesce(d.aliases, []), alias IN row.aliases |
      CASE WHEN alias IN acc THEN acc ELSE acc + alias END)
REMOVE d._lock
WITH d, row
UNWIND row.aliases AS alias
MERGE (a:DatasetAlias {alias: alias})
MERGE (a)-[:ALIAS_OF]->(d)
"""
)

# A dataset first seen by its location and later by its table identity becomes one node: the
# location-keyed node's edges and fields move to the table-keyed node, then it is deleted.
MERGE_LOCATION_NODES: Final = """
UNWIND $rows AS row
UNWIND row.locations AS location
MATCH (old:Dataset {namespace: location.namespace, name: location.name})
USING INDEX old:Dataset(namespace, name)
MATCH (new:Dataset {namespace: row.namespace, name: row.name})
USING INDEX new:Dataset(namespace, name)
WHERE old <> new
CALL (old, new) {
  MATCH (old)-[r:INPUT_TO]->(p:Process)
  MERGE (new)-[moved:INPUT_TO]->(p) SET moved += properties(r)
  DELETE r
}
CALL (old, new) {
  MATCH (p:Process)-[r:OUTPUT_TO]->(old)
  MERGE (p)-[moved:OUTPUT_TO]->(new) SET moved += properties(r)
  DELETE r
}
CALL (old, new) {
  MATCH (old)-[r:CONSUMED_BY]->(j:Job)
  MERGE (new)-[moved:CONSUMED_BY]->(j) SET moved += properties(r)
  DELETE r
}
CALL (old, new) {
  MATCH (j:Job)-[r:PRODUCES]->(old)
  MERGE (j)-[moved:PRODUCES]->(new) SET moved += properties(r)
  DELETE r
}
CALL (old, new) {
  MATCH (old)-[:HAS_FIELD]->(f:Field)
  MERGE (nf:Field {namespace: new.namespace, name: new.name, field: f.field})
  MERGE (new)-[:HAS_FIELD]->(nf)
  WITH f, nf
  CALL (f, nf) {
    MATCH (f)-[r:DERIVES]->(t:Field)
    MERGE (nf)-[moved:DERIVES {jobNamespace: r.jobNamespace, jobName: r.jobName}]->(t)
    SET moved.transformations = r.transformations
  }
  CALL (f, nf) {
    MATCH (s:Field)-[r:DERIVES]->(f)
    MERGE (s)-[moved:DERIVES {jobNamespace: r.jobNamespace, jobName: r.jobName}]->(nf)
    SET moved.transformations = r.transformations
  }
  DETACH DELETE f
}
WITH old, new,
  old.lastWrittenAt IS NOT NULL
    AND (new.lastWrittenAt IS NULL OR old.lastWrittenAt > new.lastWrittenAt) AS oldIsNewer
SET new.lastWrittenBy = CASE WHEN oldIsNewer THEN old.lastWrittenBy ELSE new.lastWrittenBy END,
    new.lastWrittenAt = CASE WHEN oldIsNewer THEN old.lastWrittenAt ELSE new.lastWrittenAt END
DETACH DELETE old
"""

# The pairing join in Cypher: terminal rank first (FAIL/ABORT 2 > COMPLETE 1 > none 0); among
# equal terminal ranks the earliest end decides; among non-terminal summaries the later one.
UPSERT_PROCESSES: Final = (
    _rows_with_times(
        "startedAt", "endedAt", "abandonedAt", "firstEventAt", "lastEventAt", "nominalStartTime"
    )
    + """MERGE (p:Process {runId: row.runId})
WITH p, row,
  CASE
    WHEN p.rank IS NULL THEN true
    WHEN row.rank <> p.rank THEN row.rank > p.rank
    WHEN row.rank = 0 THEN row.lastEventAt > p.lastEventAt
      OR (row.lastEventAt = p.lastEventAt AND row.state = 'ABANDONED')
    ELSE row.endedAt < p.endedAt
      OR (row.endedAt = p.endedAt AND row.state + coalesce(row.errorMessage, '')
          <= p.state + coalesce(p.errorMessage, ''))
  END AS decides,
  p.lastEventAt IS NULL OR row.lastEventAt >= p.lastEventAt AS newer
SET p.state = CASE WHEN decides THEN row.state ELSE p.state END,
    p.rank = CASE WHEN decides THEN row.rank ELSE p.rank END,
    p.endedAt = CASE WHEN decides THEN row.endedAt ELSE p.endedAt END,
    p.abandonedAt = CASE WHEN decides THEN row.abandonedAt ELSE p.abandonedAt END,
    p.errorMessage = CASE WHEN decides THEN row.errorMessage ELSE p.errorMessage END,
    p.startedAt = CASE WHEN p.startedAt IS NULL OR row.startedAt < p.startedAt
      THEN row.startedAt ELSE p.startedAt END,
    p.firstEventAt = CASE WHEN p.firstEventAt IS NULL OR row.firstEventAt < p.firstEventAt
      THEN row.firstEventAt ELSE p.firstEventAt END,
    p.lastEventAt = CASE WHEN newer THEN row.lastEventAt ELSE p.lastEventAt END,
    p.jobNamespace = CASE WHEN newer THEN row.jobNamespace ELSE p.jobNamespace END,
    p.jobName = CASE WHEN newer THEN row.jobName ELSE p.jobName END,
    p.sparkVersion = CASE WHEN newer
      THEN coalesce(row.sparkVersion, p.sparkVersion) ELSE p.sparkVersion END,
    p.openlineageVersion = CASE WHEN newer
      THEN coalesce(row.openlineageVersion, p.openlineageVersion) ELSE p.openlineageVersion END,
    p.producer = CASE WHEN newer THEN coalesce(row.producer, p.producer) ELSE p.producer END,
    p.nominalStartTime = CASE WHEN newer
      THEN coalesce(row.nominalStartTime, p.nominalStartTime) ELSE p.nominalStartTime END
SET p.durationMs = CASE WHEN p.startedAt IS NULL OR p.endedAt IS NULL THEN null
      ELSE duration.inSeconds(p.startedAt, p.endedAt).milliseconds END
WITH p, row
MERGE (j:Job {namespace: row.jobNamespace, name: row.jobName})
MERGE (j)-[:HAS_RUN]->(p)
"""
)

LINK_PARENTS: Final = """
UNWIND $rows AS row
WITH row WHERE row.parentRunId IS NOT NULL
MATCH (child:Process {runId: row.runId})
MERGE (parent:Process {runId: row.parentRunId})
  ON CREATE SET parent.jobNamespace = row.parentJobNamespace, parent.jobName = row.parentJobName
MERGE (child)-[:CHILD_OF]->(parent)
MERGE (parentJob:Job {namespace: row.parentJobNamespace, name: row.parentJobName})
MERGE (parentJob)-[:HAS_RUN]->(parent)
WITH row, parentJob
MATCH (childJob:Job {namespace: row.jobNamespace, name: row.jobName})
USING INDEX childJob:Job(namespace, name)
WHERE childJob <> parentJob
MERGE (childJob)-[:CHILD_OF]->(parentJob)
"""

# Spark's application run ends COMPLETE even when SQL executions under it failed. Locked before
# the count: with runs partitioned by runId, two workers may each fail a child of one parent,
# and each count would miss the other's uncommitted one. The child has no label, so no index on
# Process.state can serve the count: it expands from the parent whatever the statistics say.
COUNT_FAILED_CHILDREN: Final = """
UNWIND $parentRunIds AS parentRunId
MATCH (parent:Process {runId: parentRunId})
SET parent._lock = true
WITH parent
SET parent.failedChildRuns = COUNT {
  (child)-[:CHILD_OF]->(parent) WHERE child.state IN ['FAIL', 'ABORT']
}
REMOVE parent._lock
"""

LINK_RUN_INPUTS: Final = """
UNWIND $rows AS row
MATCH (p:Process {runId: row.runId})
MERGE (d:Dataset {namespace: row.namespace, name: row.name})
MERGE (d)-[:INPUT_TO]->(p)
"""

LINK_RUN_OUTPUTS: Final = (
    _rows_with_times("statsAt")
    + """MATCH (p:Process {runId: row.runId})
MERGE (d:Dataset {namespace: row.namespace, name: row.name})
MERGE (p)-[o:OUTPUT_TO]->(d)
WITH p, d, o, row,
  row.statsAt IS NOT NULL AND (o.statsAt IS NULL OR row.statsAt >= o.statsAt) AS newStats
SET o.rowCount = CASE WHEN newStats THEN row.rowCount ELSE o.rowCount END,
    o.bytes = CASE WHEN newStats THEN row.bytes ELSE o.bytes END,
    o.statsAt = CASE WHEN newStats THEN row.statsAt ELSE o.statsAt END
"""
)

# One row per dataset (GraphBatch.last_writes): a clause sees no earlier row's writes.
UPDATE_LAST_WRITTEN: Final = (
    _rows_with_times("at")
    + """MATCH (d:Dataset {namespace: row.namespace, name: row.name})
USING INDEX d:Dataset(namespace, name)
SET d._lock = true
WITH d, row,
  d.lastWrittenAt IS NULL OR row.at > d.lastWrittenAt
    OR (row.at = d.lastWrittenAt AND row.runId >= d.lastWrittenBy) AS newer
SET d.lastWrittenAt = CASE WHEN newer THEN row.at ELSE d.lastWrittenAt END,
    d.lastWrittenBy = CASE WHEN newer THEN row.runId ELSE d.lastWrittenBy END
REMOVE d._lock
"""
)

# One row per job (GraphBatch.job_last_runs); runs are ordered by startedAt, else first event.
UPDATE_JOB_LAST_RUN: Final = """
UNWIND $rows AS row
MATCH (j:Job {namespace: row.jobNamespace, name: row.jobName})
USING INDEX j:Job(namespace, name)
MATCH (p:Process {runId: row.runId})
SET j._lock = true
WITH j, p, coalesce(p.startedAt, p.firstEventAt) AS runAt
WITH j, p, runAt, j.lastRunId IS NULL OR j.lastRunId = p.runId OR runAt > j.lastRunAt
  OR (runAt = j.lastRunAt AND p.runId > j.lastRunId) AS later
SET j.lastRunId = CASE WHEN later THEN p.runId ELSE j.lastRunId END,
    j.lastRunAt = CASE WHEN later THEN runAt ELSE j.lastRunAt END,
    j.lastRunState = CASE WHEN later THEN p.state ELSE j.lastRunState END
REMOVE j._lock
"""

_JOB_EDGE_PROPERTIES: Final = """
SET e.firstSeenAt = CASE WHEN e.firstSeenAt IS NULL OR row.firstSeenAt < e.firstSeenAt
      THEN row.firstSeenAt ELSE e.firstSeenAt END,
    e.lastRunId = CASE WHEN e.lastSeenAt IS NULL OR row.lastSeenAt >= e.lastSeenAt
      THEN coalesce(row.lastRunId, e.lastRunId) ELSE e.lastRunId END,
    e.lastSeenAt = CASE WHEN e.lastSeenAt IS NULL OR row.lastSeenAt > e.lastSeenAt
      THEN row.lastSeenAt ELSE e.lastSeenAt END
"""

LINK_JOB_INPUTS: Final = (
    _rows_with_times("firstSeenAt", "lastSeenAt")
    + """MERGE (j:Job {namespace: row.jobNamespace, name: row.jobName})
MERGE (d:Dataset {namespace: row.namespace, name: row.name})
MERGE (d)-[e:CONSUMED_BY]->(j)
"""
    + _JOB_EDGE_PROPERTIES
)

LINK_JOB_OUTPUTS: Final = (
    _rows_with_times("firstSeenAt", "lastSeenAt")
    + """MERGE (j:Job {namespace: row.jobNamespace, name: row.jobName})
MERGE (d:Dataset {namespace: row.namespace, name: row.name})
MERGE (j)-[e:PRODUCES]->(d)
"""
    + _JOB_EDGE_PROPERTIES
)

UPSERT_FIELDS: Final = """
UNWIND $rows AS row
MERGE (d:Dataset {namespace: row.namespace, name: row.name})
MERGE (f:Field {namespace: row.namespace, name: row.name, field: row.field})
MERGE (d)-[:HAS_FIELD]->(f)
"""

LINK_DERIVATIONS: Final = """
UNWIND $rows AS row
MATCH (source:Field {namespace: row.fromNamespace, name: row.fromName, field: row.fromField})
MATCH (target:Field {namespace: row.toNamespace, name: row.toName, field: row.toField})
MERGE (source)-[d:DERIVES {jobNamespace: row.jobNamespace, jobName: row.jobName}]->(target)
SET d.transformations = reduce(acc = coalesce(d.transformations, []), t IN row.transformations |
      CASE WHEN t IN acc THEN acc ELSE acc + t END)
"""

# Retention: runs that ended or became abandoned before $cutoff go, except each job's $keepRuns
# latest runs and any run a Dataset names as lastWrittenBy. Needs an auto-commit transaction
# (IN TRANSACTIONS).
PRUNE_PROCESSES: Final = """
MATCH (d:Dataset) WHERE d.lastWrittenBy IS NOT NULL
WITH collect(DISTINCT d.lastWrittenBy) AS lastWriters
MATCH (j:Job)-[:HAS_RUN]->(p:Process)
WHERE p.firstEventAt IS NOT NULL
WITH lastWriters, j, p
ORDER BY coalesce(p.startedAt, p.firstEventAt) DESC, p.runId DESC
WITH lastWriters, j, collect(p) AS runs
UNWIND runs[$keepRuns..] AS p
WITH DISTINCT p, lastWriters
WHERE p.state <> 'RUNNING'
  AND coalesce(p.endedAt, p.abandonedAt, p.lastEventAt) < $cutoff
  AND NOT p.runId IN lastWriters
CALL (p) { DETACH DELETE p } IN TRANSACTIONS OF $batchSize ROWS
RETURN count(*) AS pruned
"""
