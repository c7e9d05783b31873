"""How the outbox relay cuts a batch into waves (common/outbox_relay.py `waves`): consecutive rows,
a wave ending before any aggregate's second row, so the stream still gets the rows in seq order
and no row goes out before its aggregate's previous one is acknowledged."""

from __future__ import annotations

import datetime

from common.outbox_relay import OutboxRow, waves

NOW = datetime.datetime(2026, 12, 2, tzinfo=datetime.UTC)


def rows(*aggregates: str) -> list[OutboxRow]:
    return [OutboxRow(f"id-{n}", n, aggregate, "checkout.test.happened", {}, {}, NOW)
            for n, aggregate in enumerate(aggregates)]


def shape(cut: list[list[OutboxRow]]) -> list[str]:
    return ["".join(row.aggregate_id for row in wave) for wave in cut]


def test_rows_of_different_aggregates_share_one_wave():
    assert shape(waves(rows("a", "b", "c", "d"))) == ["abcd"]


def test_a_wave_ends_before_an_aggregates_second_row():
    assert shape(waves(rows("a", "b", "a", "c", "b", "b"))) == ["ab", "acb", "b"]


def test_one_aggregate_goes_one_row_at_a_time():
    assert shape(waves(rows("a", "a", "a"))) == ["a", "a", "a"]


def test_the_waves_keep_every_row_in_seq_order():
    batch = rows("a", "b", "a", "c", "a", "d", "b")
    assert [row.seq for wave in waves(batch) for row in wave] == [row.seq for row in batch]
    assert waves([]) == []
