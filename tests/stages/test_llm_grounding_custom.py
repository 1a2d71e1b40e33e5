"""
The field guard on a custom schema's own fields (`unfound_fields`): a value the page's
text does not hold is kept, and flagged in the record with why.
"""

from __future__ import annotations

import pytest
from fakemodel import FakeModel

from stages._page import Page, PageRef
from stages.llm import (
    LlmStages,
    Prompts,
    Schema,
    StructuredOutputs,
    structure,
)
from stages.llm._grounding import ground_fields, unfound_fields

__all__: list[str] = []

# An invented page: no name, word or amount of it comes from a real document.
PAGE = (
    "BRIGHT KITE STATIONERS\n"
    "LOT 7, JALAN CEMPAKA 2\n"
    "INVOICE NO: INV-2O417\n"
    "DATE: 03/04/2018  CASHIER: ALIYA\n"
    "3 x PEN   4.50\n"
    "TOTAL RM 1,204.50\n"
)

SCHEMA = {
    "type": "object",
    "properties": {
        "vendor": {"type": ["string", "null"]},
        "invoice_no": {"type": ["string", "null"]},
        "paid": {"type": ["string", "null"]},
        "category": {"type": ["string", "null"], "enum": ["office", "food", None]},
    },
}


class TestUnfoundFields:
    """Each custom field is weighed by what its value reads as."""

    @pytest.mark.parametrize(
        "value",
        [
            "Bright Kite  Stationers",  # case and spacing
            "INV-20417",  # OCR's O for 0 in the page's word
            "inv 2O417",
            "Lot 7 Jalan Cempaka 2",
            "RM 1,204.50",
            "1204.50",
            "3",
            "4.5",
            "2018-04-03",  # a printed date in another format
            "3 Apr 2018",
            "Aliya",
        ],
    )
    def test_a_value_the_page_holds_passes(self, value: str) -> None:
        """Copied from the page, however written: not flagged."""
        assert unfound_fields({"mine": value}, PAGE) == {}

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            ("Nimbus Paper Works", "words not in the text"),
            ("INV-20418", "words not in the text"),
            ("Bright Kite Stationers INV-20418", "a number not in the text"),
            ("Lot 9 Jalan Cempaka 2", "a number not in the text"),
            ("RM 1,240.50", "a number not in the text"),
            ("12", "a number not in the text"),
            ("2019-04-03", "a date not in the text"),
            ("!!", "no words"),
        ],
    )
    def test_a_value_the_page_does_not_hold_is_flagged(self, value: str, reason: str) -> None:
        """Invented, or one digit off: flagged with why."""
        assert unfound_fields({"mine": value}, PAGE) == {"mine": reason}

    def test_what_is_not_weighed(self) -> None:
        """The four fields `ground_fields` checks, empty values and labels are not weighed."""
        fields = {
            "company": "Nimbus Paper Works",
            "total": "99.99",
            "note": None,
            "blank": "  ",
            "category": "office",
        }
        assert unfound_fields(fields, PAGE, labels={"category"}) == {}
        assert unfound_fields(fields, PAGE) == {"category": "words not in the text"}

    def test_the_four_fields_are_checked_as_before(self) -> None:
        """`ground_fields` still replaces only the four, and leaves a custom field be."""
        kept, problems = ground_fields(
            {"company": "Nimbus Paper Works", "vendor": "Nimbus Paper Works"},
            PAGE,
            {"company": "BRIGHT KITE STATIONERS"},
        )
        assert kept == {"company": "BRIGHT KITE STATIONERS", "vendor": "Nimbus Paper Works"}
        assert problems == {"company": "words not in the text"}


@pytest.fixture(scope="module")
def prompts() -> Prompts:
    """The shipped prompts (read here: the test's event loop may not read files)."""
    return Prompts.load()


class TestStructure:
    """The structure stage with a custom schema keeps an unfound value and flags it."""

    async def test_the_record_names_the_unfound_fields(self, prompts: Prompts) -> None:
        """A value not on the page stays, and ``llm.structure.unfound`` says why."""
        schema = Schema(SCHEMA, name="custom.json")
        assert schema.labels == {"category"}
        answer = (
            '{"vendor": "Bright Kite Stationers", "invoice_no": "INV-99001", '
            '"paid": "RM 1,204.50", "category": "office"}'
        )
        page = Page(ref=PageRef(id="p#1", source="p.jpg", page=1, kind="jpeg"), text=PAGE)
        done = await structure(
            FakeModel(answer),
            page,
            prompts=prompts,
            schema=schema,
            structured=StructuredOutputs("off", schema),
        )
        assert done.fields == {
            "vendor": "Bright Kite Stationers",
            "invoice_no": "INV-99001",
            "paid": "RM 1,204.50",
            "category": "office",
        }
        assert done.notes["llm"]["structure"]["unfound"] == {"invoice_no": "words not in the text"}
        assert "replaced" not in done.notes["llm"]["structure"]

    def test_the_summary_counts_them(self) -> None:
        """One summary line, only when some field was flagged."""
        stages = LlmStages(
            correct=None,  # type: ignore[arg-type]
            fix=None,  # type: ignore[arg-type]
            structure=None,  # type: ignore[arg-type]
            retry=None,  # type: ignore[arg-type]
            structured=StructuredOutputs("off", Schema(SCHEMA)),
        )
        assert not any("not found" in line for line in stages.summary(["structure"]))
        stages.unfound["invoice_no (words not in the text)"] += 2
        assert (
            "LLM fields kept though not found in the text (llm.structure.unfound): "
            "invoice_no (words not in the text) 2"
        ) in stages.summary(["structure"])
