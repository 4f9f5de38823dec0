"""The one parser of the moments callers name: naive in the organisation's zone, anything else a 400 naming the
field, and nothing a caller sends kept by the parser's cache beyond what a moment can be."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from dutyline.errors import Invalid
from dutyline.orgmodel.windows import MAX_MOMENT_CHARS, instant, moment, when


def test_a_naive_moment_is_read_in_the_organisations_zone_and_an_offset_is_kept() -> None:
    shanghai = dt.datetime(2026, 7, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    assert moment("2026-07-01T09:00", "Asia/Shanghai") == shanghai
    assert moment("2026-07-01T01:00:00Z", "Asia/Shanghai") == shanghai
    assert when("2026-07-01") == dt.datetime(2026, 7, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize("bad", ["soon", "2026-13-01", "", None, 5, 5.5, float("nan"), ["2026-07-01"], {"at": 1}])
def test_anything_else_is_refused_naming_the_field(bad: object) -> None:
    for parse in (moment, when):
        with pytest.raises(Invalid) as refused:
            parse(bad, "Asia/Shanghai", "as_of")
        assert [(i.path, i.code) for i in refused.value.issues] == [("as_of", "schema")]


def test_a_huge_text_is_refused_before_the_cache_keeps_it_and_is_not_echoed_whole() -> None:
    instant.cache_clear()
    huge = "2026-07-01T09:00:00" + " " * 1_000_000
    with pytest.raises(Invalid) as refused:
        moment(huge, "Asia/Shanghai")
    assert instant.cache_info().currsize == 0
    assert len(str(refused.value)) < 200
    assert moment("2026-07-01T09:00:00".ljust(MAX_MOMENT_CHARS), "Asia/Shanghai") > 0, "spaces around one still fit"
