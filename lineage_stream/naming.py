"""Dataset identity: which (namespace, name) keys a dataset node, and which aliases lead to it.

A dataset with a TABLE symlink is keyed by that table identifier; its physical location becomes an
alias, so that events naming only the location (column lineage always does) reach the same node.
"""

from __future__ import annotations

from dataclasses import dataclass

from lineage_stream.openlineage import Dataset, symlinks_of

# Hadoop's S3 connectors and Azure's non-TLS scheme name the same storage as these.
_SCHEME_ALIASES = {"s3a://": "s3://", "s3n://": "s3://", "abfs://": "abfss://"}


@dataclass(frozen=True, order=True, slots=True)
class DatasetKey:
    namespace: str
    name: str

    @property
    def alias(self) -> str:
        """`namespace/name` without doubling the name's leading slash."""
        if self.name.startswith("/") or self.namespace.endswith("/"):
            return self.namespace + self.name
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class DatasetIdentity:
    key: DatasetKey
    aliases: tuple[str, ...]
    """Every other name of the dataset (physical location, further symlinks), sorted."""


def normalise_namespace(namespace: str) -> str:
    for scheme, canonical in _SCHEME_ALIASES.items():
        if namespace.startswith(scheme):
            return canonical + namespace[len(scheme) :]
    return namespace


def normalise_name(name: str) -> str:
    stripped = name.rstrip("/")
    return stripped or name


def location_key(namespace: str, name: str) -> DatasetKey:
    return DatasetKey(normalise_namespace(namespace), normalise_name(name))


def identify(dataset: Dataset) -> DatasetIdentity:
    location = location_key(dataset.namespace, dataset.name)
    tables = sorted(
        {
            location_key(link.namespace, link.name)
            for link in symlinks_of(dataset)
            if link.type == "TABLE"
        }
    )
    if not tables:
        return DatasetIdentity(key=location, aliases=())
    key, *other_tables = tables
    aliases = {location.alias, *(table.alias for table in other_tables)} - {key.alias}
    return DatasetIdentity(key=key, aliases=tuple(sorted(aliases)))
