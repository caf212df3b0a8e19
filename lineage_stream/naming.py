"""Dataset identity: which (namespace, name) keys a dataset node, and which aliases lead to it.

A dataset with a TABLE symlink is keyed by that table identifier; its physical location becomes an
alias, so that events naming only the location (column lineage always does) reach the same node.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from lineage_stream.openlineage import Dataset, symlinks_in

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


# A fleet names the same few thousand datasets in event after event, and each names its inputs'
# locations again in column lineage: working their keys out anew was a tenth of the data path.
KEYS_REMEMBERED = 1 << 14
IDENTITIES_REMEMBERED = 1 << 14


@functools.lru_cache(maxsize=KEYS_REMEMBERED)
def location_key(namespace: str, name: str) -> DatasetKey:
    return DatasetKey(normalise_namespace(namespace), normalise_name(name))


def identify(dataset: Dataset) -> DatasetIdentity:
    symlinks = dataset.facets.get("symlinks")
    return _identify(dataset.namespace, dataset.name, None if symlinks is None else bytes(symlinks))


@functools.lru_cache(maxsize=IDENTITIES_REMEMBERED)
def _identify(namespace: str, name: str, symlinks: bytes | None) -> DatasetIdentity:
    """What `identify` finds: a function of the dataset's name and its symlinks facet as sent."""
    location = location_key(namespace, name)
    tables = sorted(
        {
            location_key(link.namespace, link.name)
            for link in symlinks_in(symlinks)
            if link.type == "TABLE"
        }
    )
    if not tables:
        return DatasetIdentity(key=location, aliases=())
    key, *other_tables = tables
    aliases = {location.alias, *(table.alias for table in other_tables)} - {key.alias}
    return DatasetIdentity(key=key, aliases=tuple(sorted(aliases)))
