"""
Encrypted PDFs: opened with the passwords given, refused with a clear reason otherwise,
and the passwords never shown.
"""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest
from corpus import encrypted_pdf

from asyncpipe import ConfigError
from stages._page import PageRef
from stages.app import pdf_passwords
from stages.inputs import InputError, discover, estimate_pages, load_page, read_page
from stages.pipeline import DocumentSettings, page_loader
from stages.testing.pdf import pdf_file

PASSWORD = "pw-0123456789-SECRET"


def _locked(folder: Path, name: str = "invoice.pdf", *, pages: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return encrypted_pdf(folder / name, PASSWORD.encode(), text=b"INVOICE 42", pages=pages)


class TestWithThePassword:
    """A PDF that needs a password opens with it, page by page, under the same ids."""

    def test_discover_counts_its_pages_under_ids_that_do_not_depend_on_it(
        self, tmp_path: Path
    ) -> None:
        """Each page gets a ref; the first's id is the one the file had without it."""
        locked = _locked(tmp_path, pages=3)
        (without,) = discover([locked])
        refs = list(discover([locked], pdf_passwords=[PASSWORD]))
        assert [ref.problem for ref in refs] == [None, None, None]
        assert refs[0].id == without.id
        assert [ref.id.split("#")[1] for ref in refs] == [
            f"{n}@{refs[0].id[-12:]}" for n in (1, 2, 3)
        ]
        assert list(estimate_pages([locked], pdf_passwords=[PASSWORD]))[-1] == 3
        assert list(estimate_pages([locked]))[-1] == 1

    def test_load_reads_the_decrypted_page(self, tmp_path: Path) -> None:
        """The page's text comes out of its encrypted content stream."""
        (ref,) = discover([_locked(tmp_path)], pdf_passwords=[PASSWORD])
        page = load_page(ref, pdf_passwords=[PASSWORD])
        assert page.text == "INVOICE 42"
        assert page.image is not None and page.image.min() < 128

    async def test_bytes_that_travel_open_with_the_password_of_the_loader(
        self, tmp_path: Path
    ) -> None:
        """A page shipped as bytes (a Ray worker's) opens with the load stage's password."""
        (ref,) = await anyio.to_thread.run_sync(
            lambda: list(discover([_locked(tmp_path)], pdf_passwords=[PASSWORD]))
        )
        shipped = await read_page(ref)
        load = page_loader(DocumentSettings(pdf_passwords=[PASSWORD]))
        page = await anyio.to_thread.run_sync(pickle.loads(pickle.dumps(load)), shipped)
        assert page.text == "INVOICE 42"

    def test_each_password_is_tried_in_turn(self, tmp_path: Path) -> None:
        """Of several passwords, the one that opens the file is used."""
        (ref,) = discover([_locked(tmp_path)], pdf_passwords=["other", PASSWORD])
        assert ref.problem is None
        assert load_page(ref, pdf_passwords=["other", PASSWORD]).text == "INVOICE 42"

    def test_receipts_mode_reads_it(self, tmp_path: Path) -> None:
        """Looking for receipts on its page opens it too (a page of text is one ref)."""
        refs = list(discover([_locked(tmp_path)], receipts=True, pdf_passwords=[PASSWORD]))
        assert [ref.problem for ref in refs] == [None]


class TestOwnerPasswordOnly:
    """A PDF whose permissions alone are restricted opens with no password, or any."""

    @pytest.mark.parametrize("given", [[], ["unrelated"]])
    def test_opens(self, tmp_path: Path, given: list[str]) -> None:
        """Discovery and load read it, whatever password is given for other files."""
        tmp_path.mkdir(exist_ok=True)
        restricted = encrypted_pdf(
            tmp_path / "statement.pdf", b"", text=b"STATEMENT", permissions=-3904
        )
        (ref,) = discover([restricted], pdf_passwords=given)
        assert ref.problem is None
        assert load_page(ref, pdf_passwords=given).text == "STATEMENT"


class TestWrongPassword:
    """A wrong password is said to be one, naming the file: not a corrupt PDF."""

    def test_discover_and_load_say_wrong_password(self, tmp_path: Path) -> None:
        """The ref's problem and the load's error name the file and the wrong password."""
        locked = _locked(tmp_path)
        (ref,) = discover([locked], pdf_passwords=["nope"])
        assert ref.problem == (
            f"{locked}: encrypted PDF: wrong password (the password given does not open it)"
        )
        assert ref.locked
        assert PageRef.from_json(ref.to_json()).locked
        (none_given,) = discover([locked])
        assert none_given.locked
        assert none_given.problem is not None
        assert "password required" in none_given.problem
        manual = PageRef("invoice.pdf#1@000000000000", str(locked), 1, "pdf")
        with pytest.raises(InputError, match=r"invoice\.pdf: encrypted PDF: wrong password"):
            load_page(manual, pdf_passwords=["nope", "nor this"])
        with pytest.raises(InputError) as raised:
            load_page(manual, pdf_passwords=["nope", "nor this"])
        assert "none of the 2 passwords given opens it" in str(raised.value)
        assert "corrupt" not in str(raised.value)


class TestAfterALockedPdf:
    """A PDF PDFium refuses without saying why is not called encrypted after a locked one
    (PDFium's last error is then the locked PDF's)."""

    @staticmethod
    def _broken(folder: Path) -> tuple[Path, Path]:
        empty = pdf_file(
            folder / "empty.pdf",
            [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"],
        )
        return empty, pdf_file(folder / "no_tree.pdf", [b"<< /Type /Catalog >>"])

    @pytest.mark.parametrize("given", [[], ["nope"]])
    def test_in_one_discovery(self, tmp_path: Path, given: list[str]) -> None:
        """Each of the two PDFs after the locked one says what is wrong with it."""
        locked = _locked(tmp_path)
        empty, no_tree = self._broken(tmp_path)
        refs = list(discover([locked, empty, no_tree], pdf_passwords=given))
        assert [ref.locked for ref in refs] == [True, False, False]
        assert [ref.problem for ref in refs[1:]] == [
            f"{empty}: PDF has no pages (its page tree is empty)",
            f"{no_tree}: corrupt or unreadable PDF: PDFium cannot parse it",
        ]
        manual = PageRef("empty.pdf#1@000000000000", str(empty), 1, "pdf")
        with pytest.raises(InputError, match=r"empty\.pdf: PDF has no pages"):
            load_page(manual, pdf_passwords=given)

    def test_locked_one_opened_in_another_thread(self, tmp_path: Path) -> None:
        """The locked PDF opened in one worker thread does not show in another's."""
        locked = _locked(tmp_path)
        empty, _ = self._broken(tmp_path)
        with ThreadPoolExecutor(1) as first, ThreadPoolExecutor(1) as second:
            (opened,) = first.submit(lambda: list(discover([locked]))).result()
            (ref,) = second.submit(lambda: list(discover([empty]))).result()
        assert opened.locked
        assert ref.problem == f"{empty}: PDF has no pages (its page tree is empty)"


class TestPasswordsNeverShow:
    """No repr, ref or message holds a password."""

    def test_settings_loader_and_refs(self, tmp_path: Path) -> None:
        """The settings, the load stage's function and the refs do not show it."""
        settings = DocumentSettings(pdf_passwords=[PASSWORD])
        assert PASSWORD not in repr(settings)
        assert PASSWORD not in repr(page_loader(settings))
        refs = list(discover([_locked(tmp_path, pages=2)], pdf_passwords=[PASSWORD]))
        for ref in refs:
            assert PASSWORD not in repr(ref) + str(ref.to_json())
        wrong = list(discover([tmp_path / "invoice.pdf"], pdf_passwords=["nope-SECRET"]))
        assert "nope-SECRET" not in str(wrong[0].problem)

    def test_from_the_environment(self) -> None:
        """The CLI's variables are read in order; unset or empty is a usage error."""
        passwords = pdf_passwords(["A", "B"], {"A": PASSWORD, "B": " with spaces "})
        assert list(passwords) == [PASSWORD, " with spaces "]
        assert PASSWORD not in repr(passwords) + str(passwords)
        assert list(pdf_passwords(None, {"A": PASSWORD})) == []
        with pytest.raises(ConfigError, match="--pdf-password-env A: that variable is not set"):
            pdf_passwords(["A"], {})
        with pytest.raises(ConfigError, match="--pdf-password-env A: that variable is empty"):
            pdf_passwords(["A"], {"A": ""})
