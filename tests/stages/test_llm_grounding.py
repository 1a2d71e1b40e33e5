"""
The field guard: a structure field is kept only if the page's text holds it.
"""

from __future__ import annotations

import pytest

from stages.llm._grounding import field_problem, ground_fields

PAGE = (
    "GREEN LEAF TRADING\n"
    "NO. 12, JALAN MAWAR 3,\n"
    "TAMAN SERI, 43000 KAJANG\n"
    "INVOICE NO: 1042  DATE: 03/04/2018 14:22\n"
    "2 x TEA   4.00\n"
    "SUBTOTAL 18.40\n"
    "ROUNDING -0.05\n"
    "TOTAL RM 18.35\n"
    "CASH 20\n"
)


@pytest.mark.parametrize(
    "value",
    ["03/04/2018", "3/4/2018", "2018-04-03", "03-04-18", "3 APR 2018", "APRIL 3, 2018"],
)
def test_a_date_printed_on_the_page_passes_in_any_format(value: str) -> None:
    """Day, month and year are compared, not the characters."""
    assert field_problem("date", value, PAGE) is None


def test_either_reading_of_a_numeric_date_passes() -> None:
    """03/04/2018 is 3 April or 4 March: a model may read it either way."""
    assert field_problem("date", "2018-03-04", PAGE) is None
    assert field_problem("date", "03/04/2018 14:22", PAGE) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2022-01-01", "a date not in the text"),
        ("03/04/2019", "a date not in the text"),
        ("yesterday", "not a date"),
    ],
)
def test_a_date_the_page_does_not_hold_fails(value: str, reason: str) -> None:
    assert field_problem("date", value, PAGE) == reason


@pytest.mark.parametrize("value", ["18.35", "RM 18.35", "RM18.35", "4.00", "20", "20.00"])
def test_an_amount_printed_on_the_page_passes(value: str) -> None:
    """The amount's value is compared: a currency, or a whole sum's decimals, do not matter."""
    assert field_problem("amount", value, PAGE) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("18.53", "an amount not in the text"),
        ("99", "an amount not in the text"),
        ("n/a", "not an amount"),
    ],
)
def test_an_amount_the_page_does_not_hold_fails(value: str, reason: str) -> None:
    assert field_problem("amount", value, PAGE) == reason


@pytest.mark.parametrize(
    "value",
    [
        "GREEN LEAF TRADING",
        "green leaf trading",
        "NO. 12, JALAN MAWAR 3, TAMAN SERI, 43000 KAJANG",
        "NO.12 JALAN MAWAR 3 TAMAN SERI 43000 KAJANG SELANGOR",  # one word added
    ],
)
def test_text_copied_from_the_page_passes(value: str) -> None:
    """Words are compared, so case, commas and line breaks do not matter."""
    assert field_problem("text", value, PAGE) is None


@pytest.mark.parametrize("value", ["NORTHWIND TRADERS SDN BHD", "1 INFINITE LOOP, CUPERTINO", "!!"])
def test_text_the_page_does_not_hold_fails(value: str) -> None:
    assert field_problem("text", value, PAGE) is not None


def test_ground_fields_keeps_read_fields_and_replaces_the_rest() -> None:
    """Invented and empty fields take the offline rules' value; read ones stay, even where
    the offline rules found nothing; a field the guard has no kind for is not checked."""
    llm = {
        "company": "GREEN LEAF TRADING",
        "date": "2022-01-01",
        "address": "",
        "total": "18.35",
        "category": "groceries",
    }
    offline = {"company": None, "date": "03/04/2018", "address": "NO. 12, JALAN MAWAR 3"}
    kept, problems = ground_fields(llm, PAGE, offline)
    assert kept == {
        "company": "GREEN LEAF TRADING",
        "date": "03/04/2018",
        "address": "NO. 12, JALAN MAWAR 3",
        "total": "18.35",
        "category": "groceries",
    }
    assert problems == {"date": "a date not in the text", "address": "empty"}


def test_an_empty_field_the_offline_rules_miss_too_is_no_problem() -> None:
    kept, problems = ground_fields({"total": None}, PAGE, {"total": None})
    assert (kept, problems) == ({"total": None}, {})


def test_an_invented_field_is_dropped_when_the_offline_rules_have_none() -> None:
    """An invented value is worse than none."""
    kept, problems = ground_fields({"date": "2022-01-01"}, PAGE, {})
    assert kept == {"date": None}
    assert problems == {"date": "a date not in the text"}


def test_a_company_and_an_address_that_are_one_value_are_both_replaced() -> None:
    """A small model puts one phrase of the page in both: it is at most one of them."""
    llm = {"company": "Taman Seri", "address": "TAMAN SERI"}
    offline = {"company": "GREEN LEAF TRADING", "address": "TAMAN SERI, 43000 KAJANG"}
    kept, problems = ground_fields(llm, PAGE, offline)
    assert kept == offline
    assert problems == {"company": "the same as address", "address": "the same as company"}
