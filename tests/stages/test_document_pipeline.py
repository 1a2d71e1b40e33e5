"""End-to-end tests of `python -m asyncpipe run` on real receipts, offline and with an LLM."""

from __future__ import annotations

from collections.abc import Iterator
from csv import reader
from functools import partial
from pathlib import Path
from typing import Any

import clirun
import cv2
import numpy as np
import orjson
import pytest
from corpus import encrypted_pdf
from PIL import Image

from asyncpipe import Journal
from stages._page import centre_in
from stages.evaluate import evaluate, load_truth
from stages.offline import exact_match, read_key_file
from stages.testing.flatbed import in_columns, side_by_side
from stages.testing.llm_server.testing import ServerHandle, run_server
from stages.testing.stamp import red_stamp

REQUIRED = {"id", "source", "page", "status", "text", "lines", "corrected", "fields", "timings"}
SECRET = "sk-test-0123456789abcdef-SECRET"


#: Each run logs its progress, so a failed run's stderr shows how far it got.
run_cli = partial(clirun.run_cli, progress="log")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Parse a JSON-lines file."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def receipts(sroie: Path, names: list[str], into: Path) -> Path:
    """Link some SROIE receipts into a folder of their own."""
    into.mkdir()
    for name in names:
        (into / f"{name}.jpg").symlink_to(sroie / "img" / f"{name}.jpg")
    return into


@pytest.fixture(scope="module")
def llm_server() -> Iterator[ServerHandle]:
    """A real OpenAI-compatible server on 127.0.0.1 that demands our API key."""
    with run_server(latency=0.02, api_key=SECRET) as handle:
        yield handle


class TestOffline:
    """The default run: no LLM, no network, real OCR."""

    #: Exact-match floors (the SROIE rule) on the 40 shared receipts. Measured with
    #: `benchmarks/accuracy_offline.py --cache-dir /tmp/accuracy-cache` (same OCR path,
    #: the engine's defaults, max_side_len 1500; re-measured 2026-12-04 with the engine's
    #: space_gap 0.45, which put one more address right):
    #: company 33/40 = 0.825, date 40/40, address 14/40 = 0.35, total 38/39 = 0.974;
    #: OCR character accuracy 0.946 (0.944 since round 7 levels a tilted page's boxes:
    #: the same text, some lines in another reading order). Round 8's crop to the print
    #: (10 scans with wide margins): address 15/40 = 0.375, OCR 0.946. Round 11's red
    #: ink lightened and address rules: company 36/40 = 0.90, address 16/40 = 0.40,
    #: OCR 0.947. Round 12's tight initials (D. E read for D.E): address 17/40 = 0.425.
    #: Round 19's wiped stamps: address 19/40 = 0.475, OCR 0.949 (fresh cache).
    #: Round 20's tax summary total left out: total 39/39 (development 026).
    #: Each floor is that level minus two receipts, so losing more than two in a field
    #: fails; OCR is guarded at 0.94.
    FLOORS = (("company", 0.85), ("date", 0.95), ("address", 0.425), ("total", 0.948))

    @pytest.mark.slow
    @pytest.mark.timeout(900)
    def test_all_receipts_meet_accuracy_targets(self, sroie: Path, tmp_path: Path) -> None:
        """On the 40 shared receipts: all four fields exact at their floors, OCR 0.94."""
        out = tmp_path / "results.jsonl"
        done = run_cli(sroie / "img", "--out", out, timeout=840)
        assert done.returncode == 0, done.stderr[-3000:]
        records = read_jsonl(out)
        assert len(records) == len(list((sroie / "img").glob("*.jpg")))
        assert all(r["status"] == "ok" for r in records)
        accuracy = evaluate(iter(records), load_truth(sroie))
        for name, floor in self.FLOORS:
            assert accuracy.rate(name) >= floor, (name, accuracy.lines())
        assert 1 - accuracy.cer_text >= 0.94, accuracy.lines()
        assert accuracy.cer_corrected <= accuracy.cer_text + 1e-9, accuracy.lines()

    # Two runs of full receipts: 7 pages as shipped (two of them read twice, to turn
    # them), then the 4 whose plain reading is checked.  At load 7.5 one OCR page takes 13-31 s
    # (two at a time): 83 s for the first run alone, past the default 120 s for both; at
    # load 14-22 the first run passed 300 s.
    @pytest.mark.timeout(900)
    def test_pages_turned_and_on_a_table_read_as_scanned(self, sroie: Path, tmp_path: Path) -> None:
        """Upside down, sideways, on a dark border, on a white A4 page, under a red stamp:
        the fields of the flat scan; and with ``--no-orient --no-crop --keep-red`` the
        turned pages lose their company, the A4 page its date and the stamped page its
        address (the check can fail)."""
        folder = tmp_path / "in"
        folder.mkdir()
        with Image.open(sroie / "img" / "002.jpg") as scan:
            scan.save(folder / "a_flat.jpg")
            scan.rotate(180).save(folder / "b_upside_down.jpg")
            scan.rotate(90, expand=True).save(folder / "c_sideways.jpg")
            width, height = scan.size
            table = Image.new("RGB", (width + 300, height + 300), (70, 60, 50))
            table.paste(scan, (150, 150))
            table.save(folder / "d_on_a_table.png")
        with Image.open(sroie / "img" / "002.jpg") as scan:
            stamped = red_stamp(np.asarray(scan.convert("RGB"))[:, :, ::-1])
        cv2.imwrite(str(folder / "g_stamped.png"), stamped)
        with Image.open(sroie / "img" / "008.jpg") as scan:
            scan.save(folder / "e_flat.jpg")
            # A4 at the receipt's own resolution, the receipt (80 mm) in the top left.
            width, height = scan.size
            a4 = Image.new("RGB", (width * 210 // 80, width * 297 // 80), (246, 246, 246))
            a4.paste(scan, (width // 10, width // 10))
            a4.save(folder / "f_on_a4.png")
        fields: dict[str, dict[str, dict[str, Any]]] = {}
        turns: dict[str, dict[str, int | None]] = {}
        reds: dict[str, dict[str, float]] = {}
        # The plain run reads only the pages whose plain reading is checked: the flat
        # scans are the reference, and nothing is asked of the table's page read plainly.
        changed = tmp_path / "changed"
        changed.mkdir()
        for stem in ("b_upside_down.jpg", "c_sideways.jpg", "f_on_a4.png", "g_stamped.png"):
            (changed / stem).symlink_to(folder / stem)
        plain = ["--no-orient", "--no-crop", "--keep-red"]
        for name, inputs, flags in (("shipped", folder, []), ("plain", changed, plain)):
            out = tmp_path / f"{name}.jsonl"
            done = run_cli(inputs, "--out", out, *flags, timeout=420)
            assert done.returncode == 0, done.stderr[-3000:]
            records = read_jsonl(out)
            fields[name] = {Path(r["source"]).stem: r["fields"] for r in records}
            turns[name] = {Path(r["source"]).stem: r.get("turns") for r in records}
            reds[name] = {
                Path(r["source"]).stem: r["red_lightened"] for r in records if "red_lightened" in r
            }
        # PIL turns counter-clockwise: three more quarter turns put "sideways" upright.
        assert turns["shipped"] == {
            "a_flat": None,
            "b_upside_down": 2,
            "c_sideways": 3,
            "d_on_a_table": None,
            "e_flat": None,
            "f_on_a4": None,
            "g_stamped": None,
        }
        assert set(turns["plain"].values()) == {None}
        flat = fields["shipped"]["a_flat"]
        assert flat["company"] and flat["total"]
        for stem in ("b_upside_down", "c_sideways", "d_on_a_table"):
            assert fields["shipped"][stem]["company"] == flat["company"], stem
            assert fields["shipped"][stem]["total"] == flat["total"], stem
        for stem in ("b_upside_down", "c_sideways"):
            assert fields["plain"][stem]["company"] != flat["company"], stem
        # A red PAID stamp over the header: lightened, the address reads as on the flat
        # scan; read as it is (--keep-red), the stamp's words are in it.
        assert fields["shipped"]["g_stamped"]["address"] == flat["address"]
        assert fields["shipped"]["g_stamped"]["total"] == flat["total"]
        assert fields["plain"]["g_stamped"]["address"] != flat["address"]
        assert set(reds["shipped"]) == {"g_stamped"} and reds["plain"] == {}
        assert 0 < reds["shipped"]["g_stamped"] < 0.1
        flat = fields["shipped"]["e_flat"]
        assert flat["date"] and flat["company"]
        assert fields["shipped"]["f_on_a4"]["date"] == flat["date"]
        assert fields["shipped"]["f_on_a4"]["company"] == flat["company"]
        assert fields["plain"]["f_on_a4"]["date"] != flat["date"]

    @pytest.mark.slow
    @pytest.mark.timeout(900)
    def test_receipts_on_one_page_give_one_record_each(self, sroie: Path, tmp_path: Path) -> None:
        """Two receipts on a flatbed page, three on a page scanned sideways, two one under
        the other, and a single receipt: one record per receipt, in order, each with its own
        date and total and its lines in its region; with ``--whole-pages`` the page of two
        mixes them (the check can fail)."""
        folder = tmp_path / "in"
        folder.mkdir()
        pages = {
            "a_two.jpg": [["000"], ["002"]],
            "b_three.png": [["004"], ["006"], ["008"]],
            "c_column.jpg": [["030", "032"]],
        }
        for name, columns in pages.items():
            page, _ = in_columns(
                [
                    [
                        np.asarray(cv2.imread(str(sroie / "img" / f"{stem}.jpg")), dtype=np.uint8)
                        for stem in column
                    ]
                    for column in columns
                ],
                gap=0.25 if name.startswith("c_") else 0.08,
            )
            if name.endswith(".png"):
                page = np.asarray(cv2.rotate(page, cv2.ROTATE_90_CLOCKWISE), dtype=np.uint8)
            cv2.imwrite(str(folder / name), page)
        (folder / "d_one.jpg").symlink_to(sroie / "img" / "010.jpg")
        stems = [stem for columns in pages.values() for column in columns for stem in column]
        stems.append("010")
        keys = {stem: read_key_file(sroie / "key" / f"{stem}.json") for stem in stems}
        out = tmp_path / "split.jsonl"
        done = run_cli(folder, "--out", out, "--csv", tmp_path / "fields.csv")
        assert done.returncode == 0, done.stderr[-3000:]
        records = read_jsonl(out)
        assert [r.get("receipt", {}).get("index") for r in records] == [1, 2, 1, 2, 3, 1, 2, None]
        assert [r["id"].split("#")[1].split("@")[0] for r in records] == [
            "1.1",
            "1.2",
            "1.1",
            "1.2",
            "1.3",
            "1.1",
            "1.2",
            "1",
        ]
        for record, stem in zip(records, stems, strict=True):
            assert record["status"] == "ok"
            for field in ("date", "total"):
                assert exact_match(keys[stem][field], record["fields"][field]), (stem, field)
        for record in [*records[:2], *records[5:7]]:  # upright: boxes on the whole page
            region = record["receipt"]["region"]
            assert all(centre_in(line["box"], region) for line in record["lines"])
        rows = (tmp_path / "fields.csv").read_text().splitlines()
        assert rows[0].startswith("id,source,page,receipt,status")
        assert [row.split(",")[3] for row in rows[1:]] == [
            "1/2",
            "2/2",
            "1/3",
            "2/3",
            "3/3",
            "1/2",
            "2/2",
            "",
        ]
        whole = tmp_path / "whole.jsonl"
        done = run_cli(folder, "--out", whole, "--whole-pages")
        assert done.returncode == 0, done.stderr[-3000:]
        records = read_jsonl(whole)
        assert len(records) == 4 and "receipt" not in records[0]
        got = records[0]["fields"]
        for stem in ("000", "002"):
            assert not all(
                exact_match(keys[stem][field], got[field]) for field in ("company", "date", "total")
            ), stem

    def test_output_lines_are_complete_and_in_input_order(
        self, sroie: Path, tmp_path: Path
    ) -> None:
        """Each page gets one line with every documented field, in input order."""
        folder = receipts(sroie, ["003", "001", "002"], tmp_path / "in")
        out = tmp_path / "results.jsonl"
        done = run_cli(
            folder, "--out", out, "--csv", tmp_path / "fields.csv", "--workers", "ocr=2,text=2"
        )
        assert done.returncode == 0, done.stderr[-3000:]
        records = read_jsonl(out)
        assert [Path(r["source"]).name for r in records] == ["001.jpg", "002.jpg", "003.jpg"]
        for record in records:
            assert set(record) >= REQUIRED, record.keys()
            assert "error" not in record
            assert record["page"] == 1 and record["status"] == "ok"
            assert record["text"] and record["corrected"] and record["lines"]
            assert set(record["fields"]) == {"company", "date", "address", "total"}
            assert set(record["timings"]) == {
                "load",
                "preprocess",
                "ocr",
                "correct",
                "fix",
                "structure",
            }
            line = record["lines"][0]
            assert len(line["box"]) == 4 and 0 < line["confidence"] <= 1
        csv_rows = (tmp_path / "fields.csv").read_text().splitlines()
        assert len(csv_rows) == 1 + len(records)
        assert "wrote" in done.stderr and "pages/s" in done.stderr

    def test_pdf_and_multipage_tiff_give_one_line_per_page(
        self, sroie: Path, tmp_path: Path
    ) -> None:
        """A 2-page PDF and a 2-page TIFF made from receipts give four page records."""

        def pages() -> list[Image.Image]:
            # Fresh images for each file: saving one leaves encoder settings on them.
            return [Image.open(sroie / "img" / f"{n}.jpg").convert("RGB") for n in ("004", "005")]

        folder = tmp_path / "in"
        folder.mkdir()
        first, *rest = pages()
        first.save(folder / "two.pdf", save_all=True, append_images=rest, resolution=150)
        first, *rest = pages()
        first.save(
            folder / "two.tif", save_all=True, append_images=rest, compression="tiff_deflate"
        )
        out = tmp_path / "results.jsonl"
        done = run_cli(folder, "--out", out)
        assert done.returncode == 0, done.stderr[-3000:]
        records = read_jsonl(out)
        assert [(Path(r["source"]).name, r["page"]) for r in records] == [
            ("two.pdf", 1),
            ("two.pdf", 2),
            ("two.tif", 1),
            ("two.tif", 2),
        ]
        assert all(r["status"] == "ok" and len(r["text"]) > 100 for r in records)
        # Page 2 of each is receipt 005: the two renderings must read alike.
        assert records[1]["fields"]["total"] == records[3]["fields"]["total"]
        assert records[0]["text"] != records[1]["text"]

    def test_a_blank_back_is_not_read(self, sroie: Path, tmp_path: Path) -> None:
        """A sheet scanned two-sided, its back blank (paper grain, no ink): the back's
        record is ok, empty and says "blank page"; with --read-blank OCR reads it and
        finds no text."""
        grain = np.random.default_rng(0).normal(238, 5, (1754, 1240))
        back = Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8)).convert("RGB")
        with Image.open(sroie / "img" / "006.jpg") as front:
            front.convert("RGB").save(
                tmp_path / "duplex.pdf", save_all=True, append_images=[back], resolution=150
            )
        for flags, warning in (([], "blank page: it holds no ink"), (["--read-blank"], "no text")):
            out = tmp_path / f"out{len(flags)}.jsonl"
            done = run_cli(tmp_path / "duplex.pdf", "--out", out, *flags)
            assert done.returncode == 0, done.stderr[-3000:]
            front_record, back_record = read_jsonl(out)
            assert front_record["status"] == "ok" and len(front_record["text"]) > 100
            assert back_record["status"] == "ok" and back_record["text"] == ""
            assert [w for w in back_record["warnings"] if w.startswith(warning)], back_record

    def test_a_truncated_jpeg_is_read_as_far_as_it_goes(self, sroie: Path, tmp_path: Path) -> None:
        """A receipt whose JPEG lost its last tenth (its date and total are above that)
        reads them and says so in its record, in the CSV and in the closing summary; a
        twentieth of one is an error record (round 23's audit: the whole page was an error
        record)."""
        folder = tmp_path / "in"
        folder.mkdir()
        data = (sroie / "img" / "010.jpg").read_bytes()
        (folder / "a_cut.jpg").write_bytes(data[: len(data) * 9 // 10])
        (folder / "b_stub.jpg").write_bytes(data[: len(data) // 20])
        out, csv = tmp_path / "results.jsonl", tmp_path / "fields.csv"
        done = run_cli(folder, "--out", out, "--csv", csv)
        assert done.returncode == 0, done.stderr[-3000:]
        cut, stub = read_jsonl(out)
        key = read_key_file(sroie / "key" / "010.json")
        assert cut["status"] == "ok"
        assert exact_match(key["company"], cut["fields"]["company"])
        assert exact_match(key["date"], cut["fields"]["date"])
        assert exact_match(key["total"], cut["fields"]["total"])
        (warning,) = cut["warnings"]
        assert warning.startswith("truncated: the file ends early; ")
        assert stub["status"] == "error" and "truncated" in stub["error"]["message"]
        rows = list(reader(csv.read_text().splitlines()))
        assert rows[0][-2:] == ["error", "warnings"] and rows[1][-1] == warning
        assert "pages written with a warning: truncated 1" in done.stdout + done.stderr

    def test_a_jpeg_garbled_in_the_middle_says_so(self, sroie: Path, tmp_path: Path) -> None:
        """64 bytes overwritten at 60 % of a receipt's JPEG: Pillow decodes it whole,
        smeared below the damage, and said nothing (round 29, helper-114: one total came
        out wrong, no warning).  The header above the damage still reads; the record and
        the summary say the file is damaged."""
        folder = tmp_path / "in"
        folder.mkdir()
        data = bytearray((sroie / "img" / "010.jpg").read_bytes())
        at = len(data) * 6 // 10
        data[at : at + 64] = np.random.default_rng(7).integers(0, 256, 64, np.uint8).tobytes()
        (folder / "a_garbled.jpg").write_bytes(bytes(data))
        # A marker where picture data should be stopped Pillow: an error record.
        data = bytearray((sroie / "img" / "010.jpg").read_bytes())
        data[at : at + 2] = b"\xff\x36"
        (folder / "b_broken.jpg").write_bytes(bytes(data))
        out = tmp_path / "results.jsonl"
        done = run_cli(folder, "--out", out)
        assert done.returncode == 0, done.stderr[-3000:]
        garbled, broken = read_jsonl(out)
        key = read_key_file(sroie / "key" / "010.json")
        for record in (garbled, broken):
            assert record["status"] == "ok", record
            assert exact_match(key["company"], record["fields"]["company"])
        assert exact_match(key["date"], garbled["fields"]["date"])  # the broken one's is cut
        (warning,) = garbled["warnings"]
        assert warning.startswith("damaged: the JPEG's compressed data is corrupt (libjpeg: ")
        (warning,) = broken["warnings"]
        assert warning.startswith(
            f"damaged: the JPEG's compressed data is corrupt (a marker where picture data "
            f"should be, at byte {at}); "
        )
        assert "of the page, above the damage, was read" in warning
        assert "pages written with a warning: damaged 2" in done.stdout + done.stderr

    def test_a_resumed_run_reads_scans_as_it_started(self, sroie: Path, tmp_path: Path) -> None:
        """A run started with ``--whole-pages`` and resumed without it keeps reading pages
        whole: no page is read both whole and cut. A run that cut scans refuses
        ``--whole-pages`` on resume."""
        folder = tmp_path / "in"
        folder.mkdir()
        page, _ = side_by_side(
            [
                np.asarray(cv2.imread(str(sroie / "img" / f"{stem}.jpg")), dtype=np.uint8)
                for stem in ("000", "002")
            ]
        )
        cv2.imwrite(str(folder / "two.jpg"), page)
        whole = tmp_path / "whole.jsonl"
        assert run_cli(folder, "--out", whole, "--whole-pages").returncode == 0
        done = run_cli(folder, "--out", whole, "--resume")
        assert done.returncode == 0, done.stderr[-3000:]
        assert len(read_jsonl(whole)) == 1
        cut = tmp_path / "cut.jsonl"
        assert run_cli(folder, "--out", cut).returncode == 0
        assert len(read_jsonl(cut)) == 2
        done = run_cli(folder, "--out", cut, "--resume", "--whole-pages")
        assert done.returncode == 2 and "resume it without --whole-pages" in done.stderr
        assert len(read_jsonl(cut)) == 2

    def test_config_file_and_bad_options(self, sroie: Path, tmp_path: Path) -> None:
        """A TOML config sets the options; unknown keys and bad values exit 2 with a reason."""
        folder = receipts(sroie, ["006"], tmp_path / "in")
        out = tmp_path / "results.jsonl"
        config = tmp_path / "asyncpipe.toml"
        config.write_text(
            f'inputs = ["{folder}"]\nout = "{out}"\nunorderd = false\nworkers = "ocr=1"\n'
        )
        bad = run_cli("--config", config)
        assert bad.returncode == 2
        assert "unknown option 'unorderd'; did you mean 'unordered'?" in bad.stderr
        config.write_text(f'inputs = ["{folder}"]\nout = "{out}"\nworkers = "ocr=1"\n')
        done = run_cli("--config", config)
        assert done.returncode == 0, done.stderr[-3000:]
        assert len(read_jsonl(out)) == 1
        again = run_cli("--config", config)
        assert again.returncode == 2 and "--resume" in again.stderr
        assert run_cli(folder, "--out", tmp_path / "x.jsonl", "--workers", "ocr=0").returncode == 2
        assert (
            run_cli(folder, "--out", tmp_path / "y.jsonl", "--rate-limit", "fast").returncode == 2
        )

    def test_empty_folder_exits_2(self, tmp_path: Path) -> None:
        """An input folder with no documents says so and exits 2."""
        (tmp_path / "empty").mkdir()
        done = run_cli(tmp_path / "empty", "--out", tmp_path / "r.jsonl")
        assert done.returncode == 2
        assert "no documents found" in done.stderr

    def test_encrypted_pdfs_open_with_the_password_from_the_environment(
        self, tmp_path: Path
    ) -> None:
        """--pdf-password-env opens a locked PDF on resume, under the same ids; a wrong
        password is an error record saying so; the password is written nowhere."""
        password = "pdf-pw-SECRET-42"
        folder = tmp_path / "in"
        folder.mkdir()
        encrypted_pdf(folder / "invoice.pdf", password.encode(), text=b"INVOICE 42", pages=2)
        encrypted_pdf(folder / "other.pdf", b"not-it", text=b"OTHER")
        encrypted_pdf(folder / "restricted.pdf", b"", text=b"RESTRICTED", permissions=-3904)
        out = tmp_path / "r.jsonl"
        first = run_cli(folder, "--out", out)
        assert first.returncode == 0, first.stderr
        before = {Path(r["source"]).name: r for r in read_jsonl(out)}
        assert before["invoice.pdf"]["status"] == "error"
        assert "password required" in before["invoice.pdf"]["error"]["message"]
        assert before["restricted.pdf"]["text"] == "RESTRICTED"
        unset = run_cli(folder, "--out", out, "--resume", "--pdf-password-env", "NO_SUCH_VAR")
        assert unset.returncode == 2
        assert "--pdf-password-env NO_SUCH_VAR: that variable is not set" in unset.stderr
        again = ("--resume", "--retry-failed", "--pdf-password-env", "PDF_PW")
        done = run_cli(folder, "--out", out, *again, env={"PDF_PW": password})
        assert done.returncode == 0, done.stderr
        records = read_jsonl(out)
        by_id = {r["id"]: r for r in records}
        first_id = before["invoice.pdf"]["id"]
        second_id = first_id.replace("#1@", "#2@")
        assert by_id[first_id]["text"] == by_id[second_id]["text"] == "INVOICE 42"
        wrong = by_id[before["other.pdf"]["id"]]
        assert wrong["error"]["message"] == (
            f"{folder / 'other.pdf'}: encrypted PDF: wrong password (the password given "
            "does not open it)"
        )
        assert len(records) == 4
        written = [out, out.with_name(out.name + ".journal")]
        for text in [*(path.read_text() for path in written), done.stdout, done.stderr]:
            assert password not in text
        # Resumed without it, the locked file's pages could not be counted: its first is
        # written, so the others would be left out unseen.  Exit 2, the output as it was.
        forgot = run_cli(folder, "--out", out, "--resume")
        assert forgot.returncode == 2, forgot.stderr
        assert "invoice.pdf: this run read pages of this encrypted PDF" in forgot.stderr
        assert "give --pdf-password-env again" in forgot.stderr
        assert read_jsonl(out) == records

    def test_an_llm_server_that_is_not_there_exits_2(self, tmp_path: Path) -> None:
        """Nothing listens at --llm-url: one clear error at the start, exit 2, no page
        run (helper-86's audit: five connection attempts and an error record a page)."""
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        sample = Path(__file__).parents[2] / "samples" / "receipt_hardware.png"
        url = f"http://127.0.0.1:{port}/v1"
        done = run_cli(sample, "--out", tmp_path / "r.jsonl", "--llm-url", url)
        assert done.returncode == 2, done.stderr[-2000:]
        assert f"cannot reach the LLM server at {url}" in done.stderr
        assert not (tmp_path / "r.jsonl").exists()


class TestWithLlm:
    """The LLM stages against a real local OpenAI-compatible server."""

    def test_llm_stages_use_the_server_within_the_rate_limit(
        self, sroie: Path, tmp_path: Path, llm_server: ServerHandle
    ) -> None:
        """Fields come from the server; no window of the scaled period holds over the limit."""
        folder = receipts(sroie, ["007", "008", "009"], tmp_path / "in")
        out = tmp_path / "results.jsonl"
        before = len(llm_server.read_log())
        limit, period = 4, 1.0
        done = run_cli(
            folder,
            "--out",
            out,
            "--llm-url",
            llm_server.url,
            "--llm-key-env",
            "TEST_LLM_KEY",
            "--rate-limit",
            f"{limit}/{period}",
            "--workers",
            "llm=8",
            env={"TEST_LLM_KEY": SECRET},
        )
        assert done.returncode == 0, done.stderr[-3000:]
        records = read_jsonl(out)
        assert len(records) == 3 and all(r["status"] == "ok" for r in records)
        for record in records:
            assert set(record["fields"]) == {"company", "date", "address", "total"}
            assert set(record["llm"]) == {"correct", "fix", "structure"}
        log = llm_server.read_log()[before:]
        assert len(log) == 9 and all(entry["auth"] == "ok" for entry in log)
        stamps = sorted(entry["ts"] for entry in log)
        for i in range(len(stamps) - limit):
            assert stamps[i + limit] - stamps[i] >= period, (i, stamps)
        assert "llm: 9 requests" in done.stderr

    def test_api_key_never_leaves_the_process(
        self, sroie: Path, tmp_path: Path, llm_server: ServerHandle
    ) -> None:
        """The key is in no log line, journal, output line or error, even when calls fail."""
        folder = receipts(sroie, ["010"], tmp_path / "in")
        out = tmp_path / "results.jsonl"
        done = run_cli(
            folder,
            "--out",
            out,
            "--llm-url",
            llm_server.url,
            "--llm-key-env",
            "TEST_LLM_KEY",
            "--log-level",
            "DEBUG",
            env={"TEST_LLM_KEY": SECRET},
        )
        assert done.returncode == 0, done.stderr[-3000:]
        wrong = run_cli(
            folder,
            "--out",
            tmp_path / "wrong.jsonl",
            "--llm-url",
            llm_server.url,
            "--llm-key-env",
            "TEST_LLM_KEY",
            "--log-level",
            "DEBUG",
            env={"TEST_LLM_KEY": SECRET + "-wrong"},
        )
        # A server that refuses the key stops the run (exit 4) and leaves the page for
        # --resume, the message naming the status (round 26: an error record a page).
        assert wrong.returncode == 4, wrong.stderr[-3000:]
        assert read_jsonl(tmp_path / "wrong.jsonl") == []
        assert "HTTP 401" in wrong.stderr
        texts = [done.stdout, done.stderr, wrong.stdout, wrong.stderr]
        texts += [p.read_text() for p in tmp_path.glob("*.jsonl*")]
        for text in texts:
            assert SECRET not in text

    def test_resume_reuses_journaled_llm_results(
        self, sroie: Path, tmp_path: Path, llm_server: ServerHandle
    ) -> None:
        """A resumed run redoes only the missing stages of the pages a server that refused
        the key left (the run stops at the first refusal: exit 4, nothing written)."""
        folder = receipts(sroie, ["011", "012"], tmp_path / "in")
        out = tmp_path / "results.jsonl"
        args = ("--out", out, "--llm-url", llm_server.url, "--llm-key-env", "TEST_LLM_KEY")
        first = run_cli(folder, *args, env={"TEST_LLM_KEY": "wrong"})
        assert first.returncode == 4, first.stderr[-3000:]
        assert read_jsonl(out) == []
        before = len(llm_server.read_log())
        second = run_cli(folder, *args, "--resume", "--retry-failed", env={"TEST_LLM_KEY": SECRET})
        assert second.returncode == 0, second.stderr[-3000:]
        records = read_jsonl(out)
        assert [r["status"] for r in records] == ["ok", "ok"]
        assert len(llm_server.read_log()) - before == 6
        # OCR was checkpointed in the first run: the resumed run did not redo it.
        assert all("ocr" in r["timings"] for r in records)
        third = run_cli(folder, *args, "--resume", env={"TEST_LLM_KEY": SECRET})
        assert third.returncode == 0
        assert len(read_jsonl(out)) == 2
        assert len(llm_server.read_log()) - before == 6

    async def test_journal_holds_checkpoints(self, tmp_path: Path) -> None:
        """Reading a missing journal gives an empty state (the CLI starts fresh)."""
        state = await Journal.read(tmp_path / "none.journal")
        assert state.lines == 0 and not state.checkpoints
