"""Which offset of each partition may be committed: the end of what was handled without holes.

Faust can deliver a partition with a hole after a rebalance: it drops re-fetched messages
below a read position left over from before the seek to the committed offset, while the
buffered copies of those messages were cleared at revocation. Committing past such a hole
would lose the messages in it, so progress only advances over contiguous offsets, and a hole
is reported so the caller can read it again (or, when the broker has no messages there, as
with transaction markers, step over it). Pure: no Kafka here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Partition = TypeVar("Partition")


@dataclass(frozen=True, slots=True)
class Progress:
    """What one batch did to a partition: the offset to commit (if it moved) and a hole."""

    commit: int | None = None
    hole_at: int | None = None


@dataclass
class OffsetLedger(Generic[Partition]):
    """Per partition, the next offset expected and the last one committed."""

    _expected: dict[Partition, int] = field(default_factory=dict)
    _committed: dict[Partition, int] = field(default_factory=dict)

    def knows(self, partition: Partition) -> bool:
        return partition in self._expected

    def start(self, partition: Partition, position: int) -> None:
        """Begin at the group's committed position (or the log start when there is none)."""
        self._expected[partition] = position
        self._committed[partition] = position

    def forget(self, partitions: Iterable[Partition]) -> None:
        """After a rebalance another member may have moved the position; ask again."""
        for partition in partitions:
            self._expected.pop(partition, None)
            self._committed.pop(partition, None)

    def handled(self, partition: Partition, offsets: Iterable[int]) -> Progress:
        """Record handled offsets; below the expected one they are replays and change nothing."""
        expected = self._expected[partition]
        hole_at = None
        for offset in sorted(set(offsets)):
            if offset == expected:
                expected += 1
            elif offset > expected:
                hole_at = expected
                break
        self._expected[partition] = expected
        if expected > self._committed[partition]:
            return Progress(commit=expected, hole_at=hole_at)
        return Progress(hole_at=hole_at)

    def step_over(self, partition: Partition, first_existing: int) -> None:
        """The broker holds nothing between the expected offset and `first_existing`."""
        self._expected[partition] = max(self._expected[partition], first_existing)

    def committed_offset(self, partition: Partition) -> int | None:
        return self._committed.get(partition)

    def committed(self, partition: Partition, offset: int) -> None:
        # A rebalance may have made the ledger forget the partition while the commit was on
        # its way; the next assignment asks the broker anyway.
        if partition in self._committed:
            self._committed[partition] = max(self._committed[partition], offset)
