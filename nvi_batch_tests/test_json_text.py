"""Stored JSON text is written byte for byte as the standard library writes it, only faster."""

import json

import pytest

from nvi_batch import json_text
from nvi_batch.demo_data import demo_candidates


def stdlib_text(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


AWKWARD_VALUES = [
    pytest.param({"points": 1e-05, "share": 2.5e-07, "big": 1e16, "tiny": 5e-324, "neg": -0.0}, id="floats"),
    pytest.param([0.1, 1.0, 123456789.123, 1.7976931348623157e308, 4.648938620973121e-05], id="float-list"),
    pytest.param(2.5e-07, id="top-level-float"),
    pytest.param({"id": 2**64, "low": -(2**63) - 1, "max": 2**63 - 1}, id="integers-beyond-64-bits"),
    pytest.param({1: "one", "2": "two"}, id="non-string-keys"),
    pytest.param({"text": "ÆØÅ æøå 😀 \u2028 \x7f \x00 \x1f \b \"quoted\" \\ tab\t"}, id="unicode-and-escapes"),
    pytest.param({"assignee": None, "finalizedBy": None, "status": "PENDING"}, id="nulls"),
    pytest.param({"note": "x:0.00001,", "id": "17e3e-5,cc0e", "points": "0.0000"}, id="float-lookalikes-in-text"),
]


@pytest.mark.parametrize("value", AWKWARD_VALUES)
def test_written_text_is_the_standard_librarys(value):
    assert json_text.dumps(value) == stdlib_text(value)


@pytest.mark.parametrize("value", AWKWARD_VALUES)
def test_stored_text_reads_back_to_the_same_text(value):
    text = stdlib_text(value)
    assert json_text.dumps(json_text.loads(text)) == text


def test_demo_aggregates_keep_their_stored_text():
    for candidate in demo_candidates(300, seed=7):
        for part in (candidate.data, list(candidate.approvals), list(candidate.notes)):
            text = stdlib_text(part)
            assert json_text.dumps(json_text.loads(text)) == text


def test_an_integer_beyond_64_bits_is_read_exactly():
    assert json_text.loads('{"n":123456789012345678901234567890}') == {"n": 123456789012345678901234567890}


@pytest.mark.parametrize("text", ["[NaN]", '{"p":Infinity}', "[-Infinity]", "[1e400]"])
def test_non_finite_numbers_are_refused_on_read(text):
    with pytest.raises(json_text.NonFiniteNumber):
        json_text.loads(text)


@pytest.mark.parametrize("value", [float("nan"), {"points": float("inf")}, [1, float("-inf")]])
def test_non_finite_numbers_are_refused_on_write(value):
    with pytest.raises(json_text.NonFiniteNumber):
        json_text.dumps(value)
