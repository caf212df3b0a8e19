"""The offset ledger: commits advance over contiguous handled offsets only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lineage_stream.offsets import OffsetLedger, Progress

pytestmark = pytest.mark.unit


def ledger_at(position: int) -> OffsetLedger[str]:
    ledger: OffsetLedger[str] = OffsetLedger()
    ledger.start("p", position)
    return ledger


def test_contiguous_batch_commits_the_offset_after_its_last_event() -> None:
    assert ledger_at(10).handled("p", [10, 11, 12]) == Progress(commit=13)


def test_replayed_offsets_below_the_position_change_nothing() -> None:
    ledger = ledger_at(10)
    assert ledger.handled("p", [7, 8, 9]) == Progress()
    assert ledger.handled("p", [9, 10]) == Progress(commit=11)


def test_a_hole_stops_the_commit_before_it_and_is_reported() -> None:
    ledger = ledger_at(10)
    assert ledger.handled("p", [10, 11, 14, 15]) == Progress(commit=12, hole_at=12)
    ledger.committed("p", 12)
    assert ledger.handled("p", [16]) == Progress(hole_at=12)
    assert ledger.handled("p", [12, 13, 14, 15, 16]) == Progress(commit=17)


def test_a_hole_at_the_position_commits_nothing() -> None:
    assert ledger_at(10).handled("p", [12]) == Progress(hole_at=10)


def test_stepping_over_offsets_the_broker_does_not_hold_lets_the_batch_count() -> None:
    ledger = ledger_at(10)
    batch = [10, 13, 14]
    assert ledger.handled("p", batch) == Progress(commit=11, hole_at=11)
    ledger.step_over("p", 13)
    assert ledger.handled("p", batch) == Progress(commit=15)


def test_an_unconfirmed_commit_is_offered_again_and_a_confirmed_one_is_not() -> None:
    ledger = ledger_at(0)
    assert ledger.handled("p", [0, 1]) == Progress(commit=2)
    assert ledger.handled("p", [1]) == Progress(commit=2)
    ledger.committed("p", 2)
    assert ledger.handled("p", [1]) == Progress()


def test_forgotten_partitions_must_be_started_again() -> None:
    ledger = ledger_at(3)
    ledger.forget(["p"])
    assert not ledger.knows("p")
    with pytest.raises(KeyError):
        ledger.handled("p", [3])


@given(
    start=st.integers(0, 1000),
    length=st.integers(0, 60),
    data=st.data(),
)
def test_commits_never_pass_an_offset_that_was_not_handled(
    start: int, length: int, data: st.DataObject
) -> None:
    offsets = list(range(start, start + length))
    missing = set(data.draw(st.sets(st.sampled_from(offsets)) if offsets else st.just(set())))
    delivered = [offset for offset in offsets if offset not in missing]
    replays = data.draw(st.lists(st.sampled_from(delivered)) if delivered else st.just([]))
    stream = sorted(delivered + replays)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)))))
    ledger = ledger_at(start)
    committed = start
    for begin, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        progress = ledger.handled("p", stream[begin:end])
        if progress.commit is not None:
            assert progress.commit > committed
            committed = progress.commit
            ledger.committed("p", committed)
    first_missing = min(missing, default=start + length)
    assert committed == first_missing


def test_a_commit_confirmed_after_the_partition_was_forgotten_is_ignored() -> None:
    ledger = ledger_at(0)
    assert ledger.handled("p", [0]) == Progress(commit=1)
    ledger.forget(["p"])
    ledger.committed("p", 1)
    assert not ledger.knows("p")
