"""Our plain CSV trace format: ``submit_s,duration_s,gpus[,group][,id]``."""

from __future__ import annotations

from pathlib import Path

import pytest

from procplan.sim.traces import (
    DEFAULT_GROUP,
    PARSERS,
    TraceFormat,
    TraceJob,
    load_trace,
    parse_csv,
)


def test_minimal_columns_default_the_group_and_the_id() -> None:
    text = "submit_s,duration_s,gpus\n10,3600,8\n0.4,12.6,1\n"
    assert parse_csv(text) == [
        TraceJob(id=3, submit_s=0, duration_s=13, gpus=1, group=DEFAULT_GROUP),
        TraceJob(id=2, submit_s=10, duration_s=3600, gpus=8, group=DEFAULT_GROUP),
    ]


def test_all_columns_in_any_order_and_empty_cells() -> None:
    text = "id,gpus,group,duration_s,submit_s,note\n7,2,nlp,60,5,x\n,1,,0,5.0,y\n"
    assert parse_csv(text) == [
        TraceJob(id=3, submit_s=0, duration_s=1, gpus=1, group=DEFAULT_GROUP),
        TraceJob(id=7, submit_s=0, duration_s=60, gpus=2, group="nlp"),
    ]
    assert parse_csv(text, limit=1) == parse_csv(text)[:1]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("5,60,0,a,", "GPU count"),
        ("5,-1,1,a,", "negative duration"),
        ("5,inf,1,a,", "infinite duration"),
        ("nan,60,1,a,", "finite"),
        ("5,60,1,a,x", "invalid literal"),
        ("5,60,1,a,1", "id 1 already used on line 2"),
    ],
)
def test_a_bad_row_names_its_line(row: str, message: str) -> None:
    text = "submit_s,duration_s,gpus,group,id\n0,10,1,a,1\n" + row + "\n"
    with pytest.raises(ValueError, match=rf"^line 3: .*{message}"):
        parse_csv(text)


def test_a_missing_column_is_an_error() -> None:
    with pytest.raises(ValueError, match="missing columns gpus"):
        parse_csv("submit_s,duration_s\n0,10\n")


def test_every_format_has_a_parser(tmp_path: Path) -> None:
    assert set(PARSERS) == set(TraceFormat)
    path = tmp_path / "trace.csv"
    path.write_text("submit_s,duration_s,gpus\n0,5,1\n", encoding="utf-8")
    assert load_trace(path, TraceFormat.CSV) == [TraceJob(2, 0, 5, 1)]
