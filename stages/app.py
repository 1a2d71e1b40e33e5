"""
The document app for the ``asyncpipe run`` command: its options, and one run's job.

It is registered as the ``documents`` app (``[project.entry-points."asyncpipe.apps"]``),
so ``asyncpipe run`` finds it by name.  The framework applies ``--workers`` (stages and
the ``llm`` / ``text`` groups, either of which may be named when no stage of the run is
in it: see `DocumentPipeline`) and ``--executor`` by stage name.  The LLM client takes
the run's shared ``llm`` limit (``--rate-limit``, default 150/min) and acquires it per
HTTP request, so a stage call that sends a repair request counts twice.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import orjson

from asyncpipe import (
    ConfigError,
    CostBudget,
    Item,
    Job,
    JournalError,
    RateLimit,
    RunOptions,
    RunSummary,
    StopIntake,
    iterate_in_thread,
    parse_rate,
)
from asyncpipe._durable import atomic_write_text  # private, but the app ships with asyncpipe

from ._malloc import start_environment as malloc_start_environment
from ._page import PageRef
from ._resumed import Changes, against_output, read_records
from .evaluate import evaluate, load_truth
from .inputs import discover, estimate_pages
from .inputs._receipts import FINDER_VERSION
from .inputs._sniff import Hidden
from .inputs._stdin import DEFAULT_MAX_STDIN_BYTES, is_piped, piped_input
from .llm._options import LlmOptions, add_arguments, timeout_advice
from .ocr import ENGINES
from .offline import load_dictionary
from .pipeline import (
    LLM_STAGES,
    DocumentSettings,
    build_pipeline,
    offline_fields,
    output_record,
    page_loader,
)
from .preprocess import PreprocessOptions

__all__ = ["DocumentApp", "app"]

log = logging.getLogger("asyncpipe.documents")

DEFAULT_KEY_ENV = "ASYNCPIPE_LLM_API_KEY"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_RATE_LIMIT = "150/min"

# The options only an LLM reads: given without --llm-url, a warning names them.
_LLM_DESTS = frozenset(
    {
        "llm_model",
        "llm_key_env",
        "llm_key_header",
        "llm_timeout",
        "llm_stages",
        "llm_structured",
        "llm_deadline",
        "llm_attempts",
        "llm_timeout_retries",
        "llm_concurrency",
        "llm_min_similarity",
        "llm_text_max_tokens",
        "llm_structure_max_tokens",
        "token_limit",
        "llm_feedback",
        "llm_prices",
        "max_cost",
        "prompts",
        "schema",
    }
)


class DocumentApp:
    """
    Scans and PDFs → OCR → correct → fix → structure → JSON lines.
    """

    description = "OCR scans and PDFs into structured JSON lines"

    def start_environment(self) -> dict[str, str]:
        """
        Huge pages for malloc (`stages._malloc.start_environment`): the per-page
        ``malloc_trim`` then costs about 3 % CPU instead of 5 %.
        """
        return malloc_start_environment()

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("documents")
        group.add_argument(
            "--ocr-engine",
            default="rapidocr",
            choices=sorted(ENGINES),
            help="OCR engine (default rapidocr: PP-OCR models as ONNX, offline)",
        )
        group.add_argument(
            "--llm-url",
            help="an OpenAI-compatible base URL, e.g. "
            "http://127.0.0.1:8000/v1; without it the offline fallbacks run",
        )
        group.add_argument(
            "--llm-model",
            default=DEFAULT_MODEL,
            help=f"the model name to ask for (default {DEFAULT_MODEL})",
        )
        group.add_argument(
            "--llm-key-env",
            default=None,
            help=f"environment variable holding the API key (default "
            f"{DEFAULT_KEY_ENV}, then OPENAI_API_KEY; a variable named here is the only "
            "one read); never logged",
        )
        group.add_argument(
            "--llm-timeout",
            type=_seconds,
            default=None,  # 60: None tells a timeout given from the default
            help="seconds one LLM request may take (default 60)",
        )
        add_arguments(group)
        group.add_argument("--prompts", type=Path, help="a folder of prompt files overriding ours")
        group.add_argument("--schema", type=Path, help="the JSON schema of the fields")
        group.add_argument("--csv", type=Path, help="also write the fields as CSV here")
        group.add_argument(
            "--truth", type=Path, help="score the output against truth.json or an SROIE folder"
        )
        group.add_argument("--deskew", action="store_true", help="straighten skewed scans")
        group.add_argument(
            "--no-orient",
            action="store_true",
            help="read every page as it lies (by default rapidocr turns a page that lies "
            "sideways or upside down upright first)",
        )
        group.add_argument(
            "--no-unbend",
            action="store_true",
            help="read a curled page once, as it lies (by default rapidocr reads a page "
            "whose lines bow under a fitted curve again, straightened: about twice the OCR "
            "time on such a page)",
        )
        group.add_argument(
            "--no-crop",
            action="store_true",
            help="read the page as framed (by default a dark background around the paper "
            "is cut away, and a bright page the print fills less than half of is cut down "
            "to the print)",
        )
        group.add_argument(
            "--keep-red",
            action="store_true",
            help="read red ink as printed (by default red ink over the print, such as a "
            "PAID stamp, is lightened before OCR; keep it when the text itself is red)",
        )
        group.add_argument(
            "--read-blank",
            action="store_true",
            help="OCR blank pages too (by default a page with no ink, such as the back of "
            'a sheet scanned two-sided, is not read: its record says "blank page")',
        )
        group.add_argument(
            "--whole-pages",
            action="store_true",
            help="read every page as one receipt (by default a scan holding several receipts "
            "side by side gives one record per receipt)",
        )
        group.add_argument(
            "--denoise", choices=("median", "bilateral", "nlmeans"), help="denoise before OCR"
        )
        group.add_argument(
            "--max-side",
            type=int,
            help="shrink pages whose longest side is larger, before OCR (default: none)",
        )
        group.add_argument(
            "--max-pixels",
            type=_megapixels,
            default=100_000_000,
            metavar="MPX",
            help="refuse a page that decodes to more megapixels than this (default 100): "
            "a decompression bomb. A PNG or TIFF is decoded whole, about 7 MB of memory per "
            "megapixel at the peak; a JPEG or a PDF page counts the pixels read at OCR's "
            "resolution, so a larger one is read",
        )
        group.add_argument(
            "--max-stdin",
            type=_megabytes,
            default=DEFAULT_MAX_STDIN_BYTES,
            metavar="MB",
            help=f"with the input - (a document piped in on standard input, held in memory "
            f"whole): refuse more than this many megabytes (default "
            f"{DEFAULT_MAX_STDIN_BYTES >> 20}); a larger document is better named as a file",
        )
        group.add_argument(
            "--pdf-dpi",
            type=int,
            default=200,
            help="PDF render resolution (default 200; a page holding a finer scan renders "
            "at the scan's, up to 600)",
        )
        group.add_argument(
            "--no-pdf-text",
            action="store_true",
            help="OCR every PDF page (by default a page that draws its own text and holds no "
            "scan is read from the PDF, exactly)",
        )
        group.add_argument(
            "--pdf-password-env",
            action="append",
            metavar="NAME",
            help="an environment variable holding the password of encrypted PDFs; give it "
            "again for more passwords, each tried in turn. Never logged, and there is no "
            "option taking the password itself: a command line shows in ps and the shell's "
            "history",
        )
        group.add_argument(
            "--inputs-shared",
            action="store_true",
            help="with a remote executor: every worker reads the inputs at the same paths "
            "(shared storage), so pages travel as paths; by default each page's file "
            "travels as bytes, and decoding happens on the worker",
        )

    def _llm_options_given(self, args: argparse.Namespace) -> list[str]:
        """The LLM options ``args`` hold at other than their defaults, by flag."""
        parser = argparse.ArgumentParser(add_help=False)
        self.add_arguments(parser)
        return [
            action.option_strings[0]
            for action in parser._actions
            if action.dest in _LLM_DESTS
            and getattr(args, action.dest, action.default) != action.default
        ]

    @asynccontextmanager
    async def open(self, options: RunOptions) -> AsyncIterator[Job]:
        args = options.app_options
        llm_options = LlmOptions.from_args(args)
        if not args.llm_url and (given := self._llm_options_given(args)):
            log.warning(
                "no --llm-url, so the offline fallbacks run, and %s %s unused",
                ", ".join(given),
                "is" if len(given) == 1 else "are",
            )
        if args.csv is not None and args.csv.is_dir():
            # The CSV is written as the run closes: a folder failed there, with a
            # traceback, after every page was read.
            raise ConfigError(
                f"--csv {args.csv} is a folder: give a file path, e.g. {args.csv / 'fields.csv'}"
            )
        passwords = pdf_passwords(args.pdf_password_env, os.environ)
        if options.resume:
            started = await anyio.to_thread.run_sync(started_llm, options.journal)
            if started is not None and not args.llm_url:
                log.warning(
                    "this run was started with an LLM (--llm-model %s, --llm-stages %s), "
                    "and is resumed without --llm-url: the pages left get the offline "
                    "rules' text and fields, beside the LLM's in the pages written (give "
                    "the same --llm-url to finish it as it started)",
                    started.get("model"),
                    ",".join(started.get("stages") or ()),
                )
        # Read at the start: a path that is no truth (an SROIE folder's img/) is exit 2
        # before any page is read, not a score of nothing after them all.
        truth = (
            None if args.truth is None else await anyio.to_thread.run_sync(load_truth, args.truth)
        )
        settings = DocumentSettings(
            ocr_engine=args.ocr_engine,
            # Only rapidocr turns and straightens pages; paddle reads them as they lie.
            ocr_options={
                option: False
                for option, off in (("orient", args.no_orient), ("unbend", args.no_unbend))
                if off and args.ocr_engine == "rapidocr"
            },
            preprocess=PreprocessOptions(
                lighten_red=not args.keep_red,
                crop_paper=not args.no_crop,
                crop_print=not args.no_crop,
                deskew=args.deskew,
                denoise=args.denoise,
                max_side=args.max_side,
                skip_blank=not args.read_blank,
            ),
            pdf_dpi=args.pdf_dpi,
            max_pixels=args.max_pixels,
            pdf_text=not args.no_pdf_text,
            pdf_passwords=passwords,
            model=args.llm_model if args.llm_url else None,
            llm_stages=llm_options.stages,
            ship_bytes=options.executor is not None and not args.inputs_shared,
        )
        # Read once, whole, before anything else: discovery, the progress's estimate and
        # a resume's walk all take these bytes, and a piped page carries them to its
        # worker (with --inputs-shared too: there is no path to share).
        stdin = await piped_input(options.inputs, max_bytes=args.max_stdin)
        if why := await anyio.to_thread.run_sync(_nothing_to_read, options.inputs, stdin):
            # Exit 2 before the output is opened: an empty folder (a share not mounted)
            # must not empty an earlier run's output under --overwrite, nor a resume add
            # an error record for it to a run that is done.
            if options.resume:
                why += f" (nothing written: {options.out} is as it was)"
            raise ConfigError(why)
        async with AsyncExitStack() as stack:
            llm = None
            client = None
            limits = llm_options.limits()
            # Declared with an LLM or without, so one --config serves both runs: offline
            # no stage acquires it, and a rate given for it is noted as unused.
            rate = options.limit("llm", parse_rate(DEFAULT_RATE_LIMIT))
            call_limit = _rate_text(rate)
            if not args.llm_url and "llm" in options.limits:
                log.info(
                    "--rate-limit llm=%s: no LLM is called (no --llm-url), so it is unused",
                    call_limit,
                )
            if args.llm_url:
                from .llm import LlmClient, llm_stages
                from .llm._schema import Schema

                key = api_key(args.llm_key_env, os.environ)
                if llm_options.max_cost is not None:
                    schema = await anyio.to_thread.run_sync(Schema.load, args.schema)
                    llm_options.check_ceiling(schema)
                client = await stack.enter_async_context(
                    LlmClient(
                        args.llm_url,
                        args.llm_model,
                        api_key=key,
                        rate_limit=rate,
                        timeout=llm_options.timeout,
                        shared=limits,
                        task_order=LLM_STAGES,
                        **llm_options.client_kwargs(),
                    )
                )
                if llm_options.stages:
                    await client.check()
                    llm_options.check_timeout(client)
                fallback = partial(offline_fields, fields=settings.fields)
                llm = await anyio.to_thread.run_sync(
                    lambda: llm_stages(
                        client,
                        prompts_dir=args.prompts,
                        schema_path=args.schema,
                        fallback=fallback,
                        **llm_options.stage_kwargs(),
                    )
                )
            if not args.llm_url or len(llm_options.stages) < 3:
                # Load the spelling dictionary once, before the workers race for it.
                await anyio.to_thread.run_sync(load_dictionary)
            # Declares the ``llm`` limit to the framework (so --rate-limit can name it);
            # the client, not the stages, acquires it.
            pipeline = build_pipeline(settings, llm, limits={"llm": rate})

            left_out: Counter[str] = Counter()
            warned: Counter[str] = Counter()

            written = [0]  # pages written by this run (the cost ceiling's intake reads it)

            def record(item: Item) -> dict[str, Any]:
                written[0] += 1
                line = output_record(item)
                for warning in line.get("warnings", ()):
                    warned[warning.split(":", 1)[0]] += 1
                return line

            def skipped(path: str, reason: str) -> None:
                log.info("skipped %s: %s", path, reason)
                if reason != "hidden":
                    left_out[_left_out_kind(path, reason)] += 1

            receipts = await anyio.to_thread.run_sync(
                partial(
                    receipts_mode, options.journal, resume=options.resume, whole=args.whole_pages
                )
            )
            changes = Changes()  # inputs replaced in place, found by a resumed walk
            source = iterate_in_thread(
                _discovered(
                    options,
                    skipped,
                    receipts=receipts,
                    keep=not options.resume,
                    changes=changes,
                    loads=page_loader(settings),
                    passwords=passwords,
                    stdin=stdin,
                    llm=(
                        {"model": args.llm_model, "stages": list(llm_options.stages)}
                        if args.llm_url
                        else None
                    ),
                )
            )
            if client is not None and limits.budget is not None:
                done = (
                    await anyio.to_thread.run_sync(changes.written_ids, options.out)
                    if options.resume
                    else frozenset()
                )
                source = _within_budget(
                    source, limits.budget, len(llm_options.stages), written, done
                )

            async def report(summary: RunSummary) -> list[str]:
                lines: list[str] = []
                if client is not None and llm is not None:
                    lines.append(client.statistics().summary())
                    lines += llm.summary(llm_options.stages)
                    lines += limits.summary(summary.elapsed, call_limit)
                    if advice := timeout_advice(
                        client.statistics(),
                        llm_options.timeout,
                        client.concurrency,
                        llm_options.stages,
                    ):
                        lines.append(advice)
                # Both read the output as a stream: a long run's output need not fit in memory.
                if args.csv is not None:
                    await anyio.to_thread.run_sync(
                        _write_csv, args.csv, options.out, settings.fields
                    )
                    lines.append(f"wrote {args.csv}")
                if truth is not None:
                    accuracy = await anyio.to_thread.run_sync(
                        lambda: evaluate(read_records(options.out), truth, fields=settings.fields)
                    )
                    if accuracy.pages:
                        lines += accuracy.lines()
                    else:
                        name, page = next(iter(truth))
                        log.warning(
                            "%s; --truth %s holds %d %s, e.g. %r page %d",
                            accuracy.lines()[0],
                            args.truth,
                            len(truth),
                            "page" if len(truth) == 1 else "pages",
                            name,
                            page,
                        )
                if warned:
                    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(warned.items()))
                    lines.append(
                        f"pages written with a warning: {kinds} (their records' warnings say what)"
                    )
                lines += _kept_lines(changes.kept_inputs())
                if left_out:
                    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(left_out.items()))
                    lines.append(
                        f"left out of the folders: {kinds} (--log-level INFO names each file)"
                    )
                pages = summary.ok + summary.failed
                if summary.elapsed > 0 and pages:
                    lines.append(
                        f"{pages} {'page' if pages == 1 else 'pages'} in {summary.elapsed:.1f} s: "
                        f"{pages / summary.elapsed:.2f} pages/s"
                    )
                return lines

            yield Job(
                pipeline=pipeline,
                source=source,
                key=_key,
                record=record,
                report=report,
                total=lambda: iterate_in_thread(
                    estimate_pages(options.inputs, pdf_passwords=passwords, stdin=stdin),
                    batch=1,
                ),
                unit="pages",
                outputs={"CSV": args.csv},  # progress: these two lines
                counters=(  # the LLM stages' shared limits, by the call limit's name
                    {"llm": lambda: limits.live(call_limit)}
                    if client is not None and llm_options.stages
                    else None
                ),
                superseded=changes.superseded,
                unread=lambda: len(changes.kept_inputs()),
            )


async def _within_budget(
    source: AsyncIterator[Any],
    budget: CostBudget,
    calls: int,
    written: list[int],
    done: frozenset[str],
) -> AsyncIterator[Any]:
    """
    ``source``, one page at a time as the cost ceiling has room for it, until it closes;
    then stop the run's intake (`StopIntake`).

    A page is let in only while what is left under the ceiling holds the pages in flight
    and it, each at its ``calls`` calls of the mean worst-case cost reserved so far (one
    page at a time until a call was reserved). Letting in pages as fast as the queues
    take them started more than the ceiling could pay for: the later calls of every
    page were refused, and with ordered output nothing was written (round 25's audit).
    """
    admitted = 0
    async for value in source:
        if getattr(value, "id", None) in done:
            yield value  # written by an earlier run: the pipeline skips it
            continue
        while not budget.closed:
            in_flight = admitted - written[0]
            mean = budget.mean_reservation
            if in_flight <= 0:
                break  # nothing in flight to wait for: the page tries its own calls
            if mean is not None and budget.remaining >= (in_flight + 1) * calls * mean:
                break
            await anyio.sleep(0.1)
        if budget.closed:
            raise StopIntake(
                "the cost ceiling",
                f"the cost ceiling of {budget.max_cost:g} is reached (spent {budget.spent:.6g},"
                f" {budget.reserved:.6g} reserved by calls in flight): no new pages; the "
                "calls running finish if they fit under it, then exit 4; --resume "
                "continues",
            )
        admitted += 1
        yield value


def _seconds(text: str) -> float:
    """``--llm-timeout``: a positive number of seconds, refused alike with ``--llm-url``
    and without (the client refused it only when there was one)."""
    value = float(text)
    if not value > 0:  # NaN is not > 0
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def _megabytes(text: str) -> int:
    """``--max-stdin``: a positive number of megabytes (MiB), as bytes."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return round(value * 2**20)


def _megapixels(text: str) -> int:
    """``--max-pixels``: a positive number of megapixels, as pixels."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return int(value * 1_000_000)


def api_key(named: str | None, environ: Mapping[str, str]) -> str | None:
    """
    The LLM API key: from the variable ``--llm-key-env`` names and no other (so a typo
    never sends another provider's key), else from `DEFAULT_KEY_ENV`, then
    ``OPENAI_API_KEY``. `LlmClient` trims and checks it.

    Raises:
        ConfigError: the variable named is not set.
    """
    if named is not None:
        if named not in environ:
            raise ConfigError(
                f"--llm-key-env {named}: that variable is not set (set it, or leave "
                f"--llm-key-env out to read {DEFAULT_KEY_ENV}, then OPENAI_API_KEY)"
            )
        return environ[named].strip() or None
    # A blank first variable does not hide the second (round 25's re-check).
    first = environ.get(DEFAULT_KEY_ENV, "").strip()
    return first or environ.get("OPENAI_API_KEY", "").strip() or None


def pdf_passwords(names: Sequence[str] | None, environ: Mapping[str, str]) -> Hidden:
    """
    The PDF passwords ``--pdf-password-env`` names, in its order, each taken exactly as
    its variable holds it (a space may be part of a password); `Hidden`, so no ``repr``
    shows them.

    Raises:
        ConfigError: a variable named is not set, or empty (it would open nothing: a PDF
            that opens without a password opens anyway).
    """
    passwords = []
    for name in names or ():
        value = environ.get(name)
        if not value:
            said = "is not set" if value is None else "is empty"
            raise ConfigError(f"--pdf-password-env {name}: that variable {said}")
        passwords.append(value)
    return Hidden(passwords)


def _rate_text(rate: RateLimit) -> str:
    """A call limit as the summary shows it: ``150/min``, or ``4/1s``."""
    return f"{rate.limit}/min" if rate.period == 60 else f"{rate.limit}/{rate.period:g}s"


def _key(ref: PageRef) -> str:
    return ref.id


def _mode_file(journal: Path) -> Path:
    return journal.with_name(journal.name + ".receipts")


def _nothing_to_read(inputs: Sequence[str], stdin: bytes | None = None) -> str | None:
    """
    Why the inputs hold nothing to run, or ``None``: no document in them, or no input
    there at all (each a path that does not exist or a pattern that matches nothing,
    which discovery yields as a problem whose source is not there; or standard input
    with nothing piped in). One typo among other inputs is an error record, and the run
    goes on. The walk stops at the first file.

    Nothing piped in (an upstream ``curl`` that failed) counts as no input rather than
    an error record: a resume must not add a record of it to a run that is done, nor
    ``--overwrite`` empty an earlier output for it; beside other inputs, it is one.
    """
    absent = []
    for ref in discover(inputs, stdin=stdin):
        there = bool(ref.data) if is_piped(ref) else os.path.lexists(ref.source)
        if there:
            return None
        absent.append(ref.problem or ref.source)
    if not absent:
        return f"no documents found in: {' '.join(inputs)}"
    return f"nothing to read: {'; '.join(absent)}" if len(absent) == len(inputs) else None


def _left_out_kind(path: str, reason: str) -> str:
    """How the summary counts a folder entry discovery left out: a file whose name is no
    document's by its ending (``.mov``), anything else by the reason."""
    if reason == "not a document file name":
        return os.path.splitext(path)[1].lower() or "no ending"
    return reason


def _discovered(
    options: RunOptions,
    skipped: Callable[[str, str], None],
    *,
    receipts: bool,
    keep: bool,
    changes: Changes,
    loads: Callable[[PageRef], object] | None = None,
    passwords: Sequence[str] = (),
    stdin: bytes | None = None,
    llm: Mapping[str, Any] | None = None,
) -> Iterator[PageRef]:
    """The run's pages; a run that starts keeps how it reads scans (see `receipts_mode`),
    and its LLM (``llm``: model and stages, or ``None``; see `started_llm`), once it
    holds its journal: when the pipeline first asks for a page.  A resumed run notes in
    ``changes`` the inputs replaced in place, and keeps the earlier pages of one that
    ``loads`` (the load stage's work) cannot decode now (`against_output`)."""
    if keep:
        kept = _mode_file(options.journal)
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write_text(kept) as fh:
                kept_mode = {"receipts": receipts, "finder": FINDER_VERSION, "llm": llm}
                fh.write(orjson.dumps(kept_mode).decode())
        except OSError as exc:
            # Without it a resume would read every scan whole (as a journal from before
            # scans were cut): stop before any page is read.
            raise JournalError(f"cannot keep how this run reads scans in {kept}: {exc}") from exc
    refs = discover(
        options.inputs,
        on_skip=skipped,
        receipts=receipts,
        pdf_passwords=passwords,
        stdin=stdin,
    )
    yield from against_output(refs, options.out, changes, loads=loads) if options.resume else refs


#: How many inputs kept from before the summary names; the warnings name all of them.
_NAMED = 5


def _kept_lines(kept: Mapping[str, tuple[str, int]]) -> list[str]:
    """
    The summary's word on the inputs a resume kept the earlier pages of (gone, or that
    cannot be read now), naming the first few and why: their warnings came at the walk,
    and scrolled away under the progress and the table.
    """
    if not kept:
        return []
    pages = sum(count for _, count in kept.values())
    one = len(kept) == 1
    lines = [
        f"{len(kept)} {'input' if one else 'inputs'} cannot be read now; the output keeps "
        f"{'its' if one else 'their'} {pages} {'page' if pages == 1 else 'pages'} from before:"
    ]
    for source, (reason, _) in list(kept.items())[:_NAMED]:
        lines.append(f"  {source}: {reason}")
    if len(kept) > _NAMED:
        lines.append(f"  and {len(kept) - _NAMED} more (the warnings name each)")
    return lines


def started_llm(journal: Path) -> dict[str, Any] | None:
    """
    The LLM the run of ``journal`` started with (``{"model": ..., "stages": [...]}``), as
    kept beside its journal; ``None`` for one started without an LLM, or by a version
    that kept no such thing, or when it cannot be read (`receipts_mode` says so).
    """
    try:
        started = orjson.loads(_mode_file(journal).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    llm = started.get("llm") if isinstance(started, dict) else None
    return llm if isinstance(llm, dict) else None


def receipts_mode(journal: Path, *, resume: bool, whole: bool) -> bool:
    """
    Whether a run cuts scans into receipts: as asked (``whole`` is ``--whole-pages``) when
    it starts, and as it started when it is resumed, so no page is read both whole and
    cut. The mode is kept beside the journal (``<journal>.receipts``), written when a
    run starts; a journal without it was started before scans were cut.

    Args:
        journal: the run's journal.
        resume: the run continues an earlier one.
        whole: ``--whole-pages`` was given.

    Returns:
        ``True`` to cut scans into receipts.

    Raises:
        ConfigError: a resumed run that cut scans is given ``--whole-pages``, or was
            started by a version that finds receipts differently.
    """
    if not resume:
        return not whole
    kept = _mode_file(journal)
    try:
        started = orjson.loads(kept.read_bytes())
    except FileNotFoundError:
        return False  # started before scans were cut into receipts: every page whole
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"{kept}: cannot read how this run reads scans: {exc}") from exc
    if not started.get("receipts"):
        return False
    if whole:
        raise ConfigError(
            "this run cut scans into receipts: resume it without --whole-pages, or start "
            "over with --overwrite"
        )
    if started.get("finder") != FINDER_VERSION:
        raise ConfigError(
            f"this run's receipts were found by finder {started.get('finder')}, and this "
            f"version's finder ({FINDER_VERSION}) may cut scans differently: finish it with "
            "the version that started it, or start over with --overwrite"
        )
    return True


def _write_csv(path: Path, out: Path, fields: tuple[str, ...]) -> None:
    """
    The fields of every page as CSV, one row per output line (``receipt`` is ``k/n`` for
    one of several receipts on a scan, else empty), written whole from the
    (exactly-once) JSON lines, so crashes and resumes never duplicate a row.  The file is
    replaced atomically and durably: a crash leaves the old CSV or the new one.

    A page whose LLM stage failed for good has the offline rules' fields
    (``fallback_fields``) in its row, and its error cell says so: the JSON line keeps them
    apart, a spreadsheet would otherwise show the page empty.  The last cell holds the
    record's warnings, if any, joined by ``; ``.  No cell starts as a formula
    (see `_inert`).
    """
    if path.parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write_text(path) as fh:
        writer = csv.writer(fh)
        header = ["id", "source", "page", "receipt", "status", *fields, "error", "warnings"]
        writer.writerow(header)
        for record in read_records(out):
            fallback = not record.get("fields") and record.get("fallback_fields")
            values = (record.get("fallback_fields") if fallback else record.get("fields")) or {}
            error = record.get("error")
            receipt = record.get("receipt")
            said = f"{error['stage']}: {error['type']}: {error['message']}" if error else ""
            row = [
                record["id"],
                record.get("source"),
                record.get("page"),
                f"{receipt['index']}/{receipt['of']}" if receipt else "",
                record["status"],
                *(values.get(name) or "" for name in fields),
                f"{said} (fields: the offline rules')" if fallback else said,
                "; ".join(record.get("warnings", ())),
            ]
            writer.writerow([_inert(cell) for cell in row])


def _inert(cell: object) -> object:
    """
    ``cell`` as a spreadsheet shows it and never runs it: text that starts as a formula
    does (``=``, ``+``, ``-``, ``@``, a tab or a carriage return: a receipt's
    ``@SUM(1+1) ENTERPRISE`` or a file named ``=HYPERLINK(…).pdf``) gets a leading ``'``,
    as OWASP advises against CSV injection.  A number a spreadsheet would read (``-5.00``)
    is left as it is.
    """
    if not isinstance(cell, str) or not cell.startswith(_FORMULA_STARTS):
        return cell
    if _NUMBER.fullmatch(cell):
        return cell
    return "'" + cell


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)*")


app = DocumentApp()
