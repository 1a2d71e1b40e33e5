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
import logging
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

from ._arguments import DEFAULT_KEY_ENV, add_arguments, llm_options_given
from ._csv import csv_and_score
from ._malloc import start_environment as malloc_start_environment
from ._page import PageRef
from ._resumed import Changes, against_output
from ._shaping import ENGINE_READS, read_by, refuse_changed, shaping_options
from ._written_ids import as_written
from .evaluate import load_truth
from .inputs import discover, estimate_pages
from .inputs._discover import REPEATED_FILE, REPEATED_FOLDER
from .inputs._receipts import FINDER_VERSION
from .inputs._sniff import Hidden
from .inputs._stdin import is_piped, piped_input
from .llm._options import LlmOptions, timeout_advice
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

if TYPE_CHECKING:
    from .llm import LlmClient, LlmLimits, LlmStages

__all__ = ["DocumentApp", "app"]

log = logging.getLogger("asyncpipe.documents")

DEFAULT_RATE_LIMIT = "150/min"


class DocumentApp:
    """
    Scans and PDFs → OCR → correct → fix → structure → JSON lines.
    """

    description = "OCR scans and PDFs into structured JSON lines"
    #: ``run --help``'s words on INPUT.
    inputs_help = (
        "scans and PDFs: files, folders (searched recursively) or glob patterns; - is a "
        "document piped in on standard input"
    )
    #: ``run --help``'s ``--workers`` value: stages of `stages.pipeline.STAGE_NAMES` and
    #: the ``llm`` group, noted as unused in a run without ``--llm-url``.
    workers_example = "ocr=2,llm=32"

    def start_environment(self) -> dict[str, str]:
        """
        Huge pages for malloc (`stages._malloc.start_environment`): the per-page
        ``malloc_trim`` then costs about 3 % CPU instead of 5 %.
        """
        return malloc_start_environment()

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The app's options (`stages._arguments.add_arguments`)."""
        add_arguments(parser)

    @asynccontextmanager
    async def open(self, options: RunOptions) -> AsyncIterator[Job]:
        """
        One run's job: check the options, read a document piped in, open the LLM client
        (with ``--llm-url``), and hand the pipeline, the pages and the summary's lines to
        the command line. The client closes when the run ends.

        Raises:
            ConfigError: an option is wrong, or the inputs hold nothing to read; either
                before the output is opened (exit 2).
        """
        args = options.app_options
        llm_options = LlmOptions.from_args(args)
        _check_options(args)
        passwords = pdf_passwords(args.pdf_password_env, os.environ)
        if options.resume:
            kept = _mode_file(options.journal)
            await anyio.to_thread.run_sync(refuse_changed, kept, args, options.out)
            await _warn_resumed_offline(options.journal, args)
        # Read at the start: a path that is no truth (an SROIE folder's img/) is exit 2
        # before any page is read, not a score of nothing after them all.
        truth = (
            None if args.truth is None else await anyio.to_thread.run_sync(load_truth, args.truth)
        )
        settings = _settings(options, args, llm_options, passwords)
        # Read once, whole, before anything else: discovery, the progress's estimate and
        # a resume's walk all take these bytes, and a piped page carries them to its
        # worker (with --inputs-shared too: there is no path to share).
        stdin = await piped_input(options.inputs, max_bytes=args.max_stdin)
        await _refuse_nothing_to_read(options, stdin)
        async with AsyncExitStack() as stack:
            limits = llm_options.limits()
            rate = _llm_rate(options, args)
            call_limit = _rate_text(rate)
            client, llm = (
                await _open_llm(stack, args, llm_options, settings, rate, limits)
                if args.llm_url
                else (None, None)
            )
            if not args.llm_url or len(llm_options.stages) < 3:
                # Load the spelling dictionary once, before the workers race for it.
                await anyio.to_thread.run_sync(load_dictionary)
            # Declares the ``llm`` limit to the framework (so --rate-limit can name it);
            # the client, not the stages, acquires it.
            pipeline = build_pipeline(settings, llm, limits={"llm": rate})

            tally = _Tally()
            # A resume of a run stopped before it asked for its first page starts it: it
            # reads scans as asked and keeps how, as the run would have.
            starts = not options.resume or await anyio.to_thread.run_sync(
                stopped_before_reading, options.journal, options.out
            )
            receipts = await anyio.to_thread.run_sync(
                partial(receipts_mode, options.journal, resume=not starts, whole=args.whole_pages)
            )
            changes = Changes()  # inputs replaced in place, found by a resumed walk
            source = iterate_in_thread(
                _discovered(
                    options,
                    tally.skipped,
                    receipts=receipts,
                    keep=starts,
                    changes=changes,
                    loads=page_loader(settings),
                    passwords=passwords,
                    stdin=stdin,
                    llm=(
                        {"model": args.llm_model, "stages": list(llm_options.stages)}
                        if args.llm_url
                        else None
                    ),
                    shaping=shaping_options(args),
                )
            )
            if client is not None and limits.budget is not None:
                done = (
                    await anyio.to_thread.run_sync(changes.written_ids, options.out)
                    if options.resume
                    else frozenset()
                )
                source = _within_budget(source, limits.budget, len(llm_options.stages), tally, done)

            async def report(summary: RunSummary) -> list[str]:
                lines: list[str] = []
                if client is not None and llm is not None:
                    lines += _llm_lines(
                        client, llm, llm_options, limits, summary, call_limit, llm_options.timeout
                    )
                lines += await csv_and_score(args, options.out, settings.fields, truth)
                lines += tally.warned_lines()
                lines += _kept_lines(changes.kept_inputs())
                lines += tally.left_out_lines()
                lines += _pace_lines(summary)
                return lines

            yield Job(
                pipeline=pipeline,
                source=source,
                key=_key,
                record=tally.record,
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


def _check_options(args: argparse.Namespace) -> None:
    """
    Warn of LLM options given without ``--llm-url`` (the offline fallbacks run) and of
    rapidocr's page options given to another engine, and refuse a ``--csv`` that is a
    folder.

    Raises:
        ConfigError: ``--csv`` names a folder.
    """
    if not args.llm_url and (given := llm_options_given(args)):
        log.warning(
            "no --llm-url, so the offline fallbacks run, and %s %s unused",
            ", ".join(given),
            "is" if len(given) == 1 else "are",
        )
    ignored = [
        flag
        for flag in ENGINE_READS
        if getattr(args, flag[2:].replace("-", "_")) and not read_by(flag, args.ocr_engine)
    ]
    if ignored:
        # `_settings` passes them to rapidocr alone: paddle reads pages as they lie.
        log.warning(
            "%s %s rapidocr's: the %s engine reads pages as they lie, so %s nothing",
            " and ".join(ignored),
            "is" if len(ignored) == 1 else "are",
            args.ocr_engine,
            "it changes" if len(ignored) == 1 else "they change",
        )
    if args.csv is not None and args.csv.is_dir():
        # The CSV is written as the run closes: a folder would fail there, with a
        # traceback, after every page was read.
        raise ConfigError(
            f"--csv {args.csv} is a folder: give a file path, e.g. {args.csv / 'fields.csv'}"
        )


async def _warn_resumed_offline(journal: Path, args: argparse.Namespace) -> None:
    """
    Warn when a run started with an LLM (`started_llm`) is resumed without ``--llm-url``:
    the pages left get the offline rules' text and fields.
    """
    started = await anyio.to_thread.run_sync(started_llm, journal)
    if started is not None and not args.llm_url:
        log.warning(
            "this run was started with an LLM (--llm-model %s, --llm-stages %s), "
            "and is resumed without --llm-url: the pages left get the offline "
            "rules' text and fields, beside the LLM's in the pages written (give "
            "the same --llm-url to finish it as it started)",
            started.get("model"),
            ",".join(started.get("stages") or ()),
        )


def _settings(
    options: RunOptions, args: argparse.Namespace, llm_options: LlmOptions, passwords: Hidden
) -> DocumentSettings:
    """The pipeline's settings, from the app's options."""
    return DocumentSettings(
        ocr_engine=args.ocr_engine,
        # Only rapidocr turns and straightens pages; paddle reads them as they lie.
        ocr_options={
            option: False
            for option, off in (("orient", args.no_orient), ("unbend", args.no_unbend))
            if off and read_by(f"--no-{option}", args.ocr_engine)
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


async def _refuse_nothing_to_read(options: RunOptions, stdin: bytes | None) -> None:
    """
    Refuse inputs that hold nothing to read (`_nothing_to_read`).

    Raises:
        ConfigError: no document in the inputs, or no input there at all.
    """
    if why := await anyio.to_thread.run_sync(_nothing_to_read, options.inputs, stdin):
        # Exit 2 before the output is opened: an empty folder (a share not mounted)
        # must not empty an earlier run's output under --overwrite, nor a resume add
        # an error record for it to a run that is done.
        if options.resume:
            why += f" (nothing written: {options.out} is as it was)"
        raise ConfigError(why)


def _llm_rate(options: RunOptions, args: argparse.Namespace) -> RateLimit:
    """
    The run's shared ``llm`` call limit (``--rate-limit llm=RATE``, default
    `DEFAULT_RATE_LIMIT`). It is declared with an LLM or without, so one ``--config``
    serves both runs: offline no stage acquires it, and a rate given for it is noted as
    unused.
    """
    rate = options.limit("llm", parse_rate(DEFAULT_RATE_LIMIT))
    if not args.llm_url and "llm" in options.limits:
        log.info(
            "--rate-limit llm=%s: no LLM is called (no --llm-url), so it is unused",
            _rate_text(rate),
        )
    return rate


async def _open_llm(
    stack: AsyncExitStack,
    args: argparse.Namespace,
    llm_options: LlmOptions,
    settings: DocumentSettings,
    rate: RateLimit,
    limits: LlmLimits,
) -> tuple[LlmClient, LlmStages]:
    """
    The LLM client, open on ``stack`` (checked at the start when a stage will call it),
    and the LLM stages that call it, each falling back to the offline rules' fields.

    Raises:
        ConfigError: the key's variable is not set, a call of a stage cannot fit under
            the cost ceiling, or the server fails its start-up check.
    """
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
    return client, llm


class _Tally:
    """
    What a run counts as it goes: the pages it wrote (the cost ceiling's intake reads
    them), their warnings by kind, the folder entries discovery left out, and the files
    and folders it reached again (read once).
    """

    def __init__(self) -> None:
        self.written = 0
        self.warned: Counter[str] = Counter()
        self.left_out: Counter[str] = Counter()
        self.repeats: Counter[str] = Counter()

    def record(self, item: Item) -> dict[str, Any]:
        """The output line of ``item`` (`output_record`), counted."""
        self.written += 1
        line = output_record(item)
        for warning in line.get("warnings", ()):
            self.warned[warning.split(":", 1)[0]] += 1
        return line

    def skipped(self, path: str, reason: str) -> None:
        """Discovery left ``path`` out for ``reason``: logged, and counted unless hidden."""
        log.info("skipped %s: %s", path, reason)
        if reason in _REPEATS:
            self.repeats[_REPEATS[reason]] += 1
        elif reason != "hidden":
            self.left_out[_left_out_kind(path, reason)] += 1

    def warned_lines(self) -> list[str]:
        """The summary's count of the pages written with a warning, by kind."""
        if not self.warned:
            return []
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.warned.items()))
        return [f"pages written with a warning: {kinds} (their records' warnings say what)"]

    def left_out_lines(self) -> list[str]:
        """
        The summary's count of the folder entries left out, by kind, and of the files
        and folders given twice (read once); with how to see them named, when the log
        level hides the lines that name them.
        """
        lines = []
        if self.left_out:
            kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.left_out.items()))
            lines.append(f"left out of the folders: {kinds}")
        if self.repeats:
            kinds = ", ".join(
                f"{n} {kind if n == 1 else kind + 's'}"
                for kind in ("file", "folder")
                if (n := self.repeats[kind])
            )
            lines.append(f"given twice, read once: {kinds}")
        if not log.isEnabledFor(logging.INFO):
            return [f"{line} (--log-level INFO names each file)" for line in lines]
        return lines


def _llm_lines(
    client: LlmClient,
    llm: LlmStages,
    llm_options: LlmOptions,
    limits: LlmLimits,
    summary: RunSummary,
    call_limit: str,
    timeout: float,
) -> list[str]:
    """
    The summary's lines on the LLM: the client's calls, the stages' work, the shared
    limits, and advice on ``--llm-timeout`` when calls ran out of it.
    """
    lines = [client.statistics().summary()]
    lines += llm.summary(llm_options.stages)
    lines += limits.summary(summary.elapsed, call_limit)
    if advice := timeout_advice(
        client.statistics(), timeout, client.concurrency, llm_options.stages
    ):
        lines.append(advice)
    return lines


def _pace_lines(summary: RunSummary) -> list[str]:
    """The summary's pages per second, when the run wrote any."""
    pages = summary.ok + summary.failed
    if summary.elapsed > 0 and pages:
        return [
            f"{pages} {'page' if pages == 1 else 'pages'} in {summary.elapsed:.1f} s: "
            f"{pages / summary.elapsed:.2f} pages/s"
        ]
    return []


async def _within_budget(
    source: AsyncIterator[Any],
    budget: CostBudget,
    calls: int,
    tally: _Tally,
    done: frozenset[str],
) -> AsyncIterator[Any]:
    """
    ``source``, one page at a time as the cost ceiling has room for it, until it closes;
    then stop the run's intake (`StopIntake`).

    A page is let in only while what is left under the ceiling holds the pages in flight
    (let in, not yet written: ``tally.written``) and it, each at its ``calls`` calls of
    the mean worst-case cost reserved so far (one page at a time until a call was
    reserved). Pages let in as fast as the queues take them would start more than the
    ceiling can pay for: the later calls of every page would be refused, and with
    ordered output nothing would be written. Pages in ``done`` (written by an earlier
    run) pass at once.
    """
    admitted = 0
    async for value in source:
        if getattr(value, "id", None) in done:
            yield value  # written by an earlier run: the pipeline skips it
            continue
        while not budget.closed:
            in_flight = admitted - tally.written
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
    # A blank first variable (exported but empty) does not hide the second.
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


#: The kind the summary counts each repeat under (`_Tally.left_out_lines`).
_REPEATS = {REPEATED_FILE: "file", REPEATED_FOLDER: "folder"}


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
    shaping: Mapping[str, Any] | None = None,
) -> Iterator[PageRef]:
    """The run's pages; a run that starts keeps how it reads scans (see `receipts_mode`),
    its LLM (``llm``: model and stages, or ``None``; see `started_llm`) and the options
    that shape its pages (``shaping``: `stages._shaping`), once it holds its journal:
    when the pipeline first asks for a page.  A resumed run notes in
    ``changes`` the inputs replaced in place, and keeps the earlier pages of one that
    ``loads`` (the load stage's work) cannot decode now (`against_output`)."""
    if keep:
        kept = _mode_file(options.journal)
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write_text(kept) as fh:
                kept_mode = {"receipts": receipts, "finder": FINDER_VERSION, "llm": llm}
                kept_mode["options"] = shaping
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
    if not options.resume:
        yield from refs
        return
    refs = as_written(refs, partial(changes.earlier, options.out))
    yield from against_output(refs, options.out, changes, loads=loads)


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


def stopped_before_reading(journal: Path, out: Path) -> bool:
    """
    Whether the run of ``journal`` stopped before it asked for its first page: it kept no
    mode beside its journal (`receipts_mode`), its journal holds nothing but start lines
    and its output no line.  A run of a version that read every page whole also kept no
    mode, but it journaled or wrote the pages it read.
    """
    if _mode_file(journal).exists() or (out.exists() and out.stat().st_size):
        return False
    try:
        with journal.open("rb") as fh:
            for line in fh:
                event = orjson.loads(line)
                if not (isinstance(event, dict) and event.get("ev") == "start"):
                    return False
    except FileNotFoundError:
        return True  # no journal either: nothing was begun
    except (OSError, orjson.JSONDecodeError):
        return False  # a torn line was something written: not known to be a start
    return True


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


app = DocumentApp()
