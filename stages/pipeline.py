"""
The document pipeline: input → load → preprocess → ocr → correct → fix → structure → sink.

`build_pipeline` joins the document stages on the asyncpipe framework; `output_record`
is the JSON line written for each page.  With an LLM endpoint the text stages chosen by
``--llm-stages`` (all three by default) are async LLM calls sharing one rate limit and the
LLM retry policy; the others are the offline fallbacks, run as thread stages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import count
from typing import TYPE_CHECKING, Any, Literal, Self

from asyncpipe import ConfigError, Executor, Item, Pipeline, RateLimit, Retry, Stage

from ._malloc import release_memory, tune_malloc
from ._page import Page, PageRef, utf8_text
from .inputs import encoded_bytes, load_page, page_bytes, read_page
from .inputs._sniff import Hidden
from .ocr import make_engine, ocr_page, rapidocr_max_side
from .offline import correct_lines, correct_text, extract_fields, fix_layout
from .preprocess import PreprocessOptions, preprocess

if TYPE_CHECKING:
    from .llm import LlmStages

__all__ = [
    "DEFAULT_WORKERS",
    "GROUPS",
    "LARGE_PAGE_PIXELS",
    "SMALL_PRINT",
    "STAGE_NAMES",
    "UNSURE",
    "DocumentPipeline",
    "DocumentSettings",
    "build_pipeline",
    "engine_max_side",
    "offline_fields",
    "output_record",
    "page_loader",
]

STAGE_NAMES = ("read", "load", "preprocess", "ocr", "correct", "fix", "structure")

#: The groups of the text stages: ``llm`` holds those that call the LLM, ``text`` those
#: that run their offline rules. Which stages each holds depends on ``--llm-url`` and
#: ``--llm-stages``, so an override may name either whether or not a stage is in it.
GROUPS = ("llm", "text")

log = logging.getLogger("asyncpipe.documents")

#: Print whose median OCR line box is lower than this many pixels of the scan gets a
#: warning in its record. The 40 SROIE scans' is 17 to 52; shrunk to 0.4 of their size
#: (7 to 21) the development half lost 5 to 8 of 20 per field, at 0.25 9 to 13, at 0.6
#: (10 to 31) 0 to 4 (`benchmarks/robustness.py --half dev --transforms small,tiny,thumb`).
#: It is 12 because print of 10 to 12 px is misread too: among 119 receipts of other
#: layouts, 7 of the 10 pages with such print had a wrong field, against 35 of the 107
#: with taller print (README.md, "small print"; the set: docs/accuracy.md, "New layouts").
SMALL_PRINT = 12

#: A page whose median OCR line was read with less confidence than this gets a warning:
#: the engine was guessing (motion blur, a smeared print). The 40 SROIE scans' median
#: is 0.987 or more; among 119 receipts of other layouts, the 5 motion-blurred ones read
#: 0.66 to 0.76, with wrong fields on every one, and every other page 0.978 or more
#: (README.md, "unsure reading"; docs/accuracy.md, "New layouts").
UNSURE = 0.9

LLM_STAGES = ("correct", "fix", "structure")

# Fixed numbers, whatever the machine's core count: sized for a 2-core machine, and
# changed with --workers (e.g. --workers ocr=4,llm=32).  OCR engines each take one ONNX
# thread, so two OCR workers fill two cores.  LLM stages wait on the network, so they
# get many: the shared rate limit, not this number, is what bounds the calls.
DEFAULT_WORKERS: Mapping[str, int] = {
    "read": 4,
    "load": 2,
    "preprocess": 2,
    "ocr": 2,
    "llm": 16,
    "text": 1,
}

# A stage failure that is the input's own fault (a corrupt file) fails the same way
# every time: the offline stages are not retried.  The LLM stages bring their own policy
# (`LlmStages.retry`): the client reports a retryable fault, the stage's Retry waits.
_NO_RETRY = Retry(attempts=1)


@dataclass(frozen=True)
class DocumentSettings:
    """
    How to build the document pipeline.

    Attributes:
        workers: workers per stage name; ``llm`` sets all three LLM stages and ``text``
            the three offline text stages, unless a stage is named itself.
        ocr_engine: ``rapidocr`` (default) or ``paddle``.
        ocr_options: keyword options for the engine.
        preprocess: the OpenCV steps: only the crop to the paper is on by default (it
            leaves a flat scan as it is); the others were measured and did not help
            rapidocr on the SROIE receipts.
        max_pixels: the largest page accepted, in pixels (decompression-bomb guard).
        pdf_dpi: the resolution PDF pages are rendered at; a page holding a finer scan
            renders at the scan's own, up to 600 dpi (`stages.inputs.load_page`).
        pdf_text: take the text a PDF page shows from the PDF instead of OCR, which then
            reads only the page's pictures (``--no-pdf-text`` turns it off).
        pdf_passwords: the passwords to try, in turn, on an encrypted PDF that does not
            open without one (``--pdf-password-env``). Left out of this object's ``repr``;
            they reach the load stage's function (a Ray actor of ``load`` holds them) and
            PDFium, never a page, a record, the journal or a message.
        fields: the field names to extract (offline rules); the LLM uses its schema.
        model: the LLM model name, part of the LLM stages' checkpoint version.
        llm_stages: the text stages that call the LLM when ``model`` is set; the others
            run their offline fallbacks.
        max_buffer_size: items waiting in front of each stage.
        decode_max_side: decode pages at most this many pixels on the longer side;
            ``"engine"`` (the default) decodes JPEG, PNG, TIFF and PDF pages up to
            `LARGE_PAGE_PIXELS` at full size (a PDF page at its rendering resolution),
            larger PNG, TIFF and PDF pages at 2000 px, and JPEGs larger than
            `LARGE_PAGE_PIXELS` (600-dpi A4 scans) at the OCR engine's own working size
            (`engine_max_side`: rapidocr's ``max_side_len``, 1500 unless ``ocr_options``
            set it); full size for engines that do not shrink pages; and
            ``None`` always decodes at full size.
        max_queue_bytes: the most bytes of pixels waiting in front of preprocess and of
            OCR each, besides ``max_buffer_size`` (one page always passes, however big).
        ship_bytes: start with a ``read`` stage that attaches each page's file bytes, so
            ``load`` can run on a worker that cannot read the inputs' paths (remote
            executors); the encoded file travels, never the decoded pixels.
        malloc_tuning: tune glibc malloc for the process when the pipeline is built (2
            arenas) and give free heap pages back after every ``trim_every``-th OCR page
            (see `stages._malloc`), so resident memory follows the pages in flight instead
            of creeping up; ``ASYNCPIPE_MALLOC_TUNING=0`` also turns it off.
        trim_above: with ``malloc_tuning``, give the pages back only when the process is
            over this many bytes resident at a trim; ``0`` (the default): always.  Above a
            size it costs nothing on small pages, but memory creeps up to that size.
        trim_every: with ``malloc_tuning``, give the pages back after every
            ``trim_every``-th OCR page of the run (counted over all OCR workers).  Each
            receipt leaves 400-500 MB free in the heaps, which the next page faults back
            in after a trim: trimming after each page (``1``) kept the peak at about
            1.0 GB and did 0.94, 0.96 and 1.02 of a hand-written pool's pages/s in three
            runs; after every 4th (the default) 0.99 and 0.96 in two, with a peak of
            about 1.3 GB; never, 0.97-1.02 and 1.4 GB, with 0.9 GB left resident
            (``benchmarks/README.md``, "trim every 4th page").
    """

    workers: Mapping[str, int] = field(default_factory=dict)
    ocr_engine: str = "rapidocr"
    ocr_options: Mapping[str, Any] = field(default_factory=dict)
    preprocess: PreprocessOptions = field(default_factory=PreprocessOptions)
    max_pixels: int = 100_000_000
    pdf_dpi: int = 200
    pdf_text: bool = True
    pdf_passwords: Sequence[str] = field(default=(), repr=False)
    fields: tuple[str, ...] = ("company", "date", "address", "total")
    model: str | None = None
    llm_stages: tuple[str, ...] = LLM_STAGES
    max_buffer_size: int = 8
    decode_max_side: int | Literal["engine"] | None = "engine"
    max_queue_bytes: int = 64 << 20
    ship_bytes: bool = False
    malloc_tuning: bool = True
    trim_above: int = 0
    trim_every: int = 4

    def workers_for(self, stage: str) -> int:
        """
        The worker count of ``stage``, after the ``llm``/``text`` group settings.
        """
        unknown = set(self.workers) - {*STAGE_NAMES, "llm", "text"}
        if unknown:
            raise ConfigError(
                f"unknown stage in workers: {', '.join(sorted(unknown))} "
                f"(stages: {', '.join(STAGE_NAMES)}; groups: llm, text)"
            )
        if stage in self.workers:
            return self.workers[stage]
        group = "llm" if self.model is not None and stage in self.llm_stages else "text"
        if stage in LLM_STAGES:
            return self.workers.get(group, DEFAULT_WORKERS[group])
        return DEFAULT_WORKERS[stage]


class DocumentPipeline(Pipeline):
    """
    The document pipeline: a `Pipeline` whose overrides (``--workers``) may name either
    text-stage group of `GROUPS` when no stage of this run is in it, so one ``--config``
    serves a run with an LLM and one without: ``llm=32`` is noted as unused offline, and
    ``text=2`` when every text stage calls the LLM.  So may the executor's stages
    (``--ray-stages ocr,text``).  Any other unknown name is still a `ConfigError` that
    lists the names there are.
    """

    def configure(
        self,
        *,
        workers: Mapping[str, int] | None = None,
        executor: Executor | None = None,
        executor_stages: Collection[str] | None = None,
        limits: Mapping[str, RateLimit] | None = None,
    ) -> Self:
        if workers:
            names = [stage.name for stage in self.stages]
            unknown = sorted(set(workers) - set(names) - set(GROUPS) - set(self.groups))
            if unknown:
                raise ConfigError(
                    f"workers: no stage or group named {', '.join(map(repr, unknown))} "
                    f"(stages: {', '.join(names)}; groups: {', '.join(GROUPS)})"
                )
            unused = [name for name in GROUPS if name in workers and name not in self.groups]
            for name in unused:
                log.info(
                    "--workers %s=%d: no stage of this run is in the %r group (%s), so it "
                    "is unused",
                    name,
                    workers[name],
                    name,
                    "no --llm-url" if name == "llm" else "every text stage calls the LLM",
                )
            workers = {name: n for name, n in workers.items() if name not in unused}
        if executor_stages:
            empty = [name for name in GROUPS if name in executor_stages and name not in self.groups]
            for name in empty:
                log.info(
                    "--ray-stages %s: no stage of this run is in the %r group, so it is unused",
                    name,
                    name,
                )
            executor_stages = [name for name in executor_stages if name not in empty]
            if not executor_stages:
                raise ConfigError(
                    f"executor stages: no stage of this run is in {', '.join(map(repr, empty))}"
                    f" (stages: {', '.join(stage.name for stage in self.stages)})"
                )
        return super().configure(
            workers=workers, executor=executor, executor_stages=executor_stages, limits=limits
        )


def engine_max_side(engine: str, options: Mapping[str, Any]) -> int | None:
    """
    The longest side ``engine`` with ``options`` works at (rapidocr: its
    ``Global.max_side_len``, 1500 by default); ``None`` for an engine that reads pages at
    full size.  Decoding more pixels than this is wasted memory.
    """
    if engine == "rapidocr":
        return rapidocr_max_side(options.get("params"))
    return None


#: Pages up to this many pixels (a 3508x2481 receipt is 8.7 Mpx) decode at full size;
#: larger JPEGs (a 600-dpi A4 scan is 34.8 Mpx) decode at the engine's working size,
#: larger PNG and TIFF pages at 2000 px.  Measured (benchmarks/README.md): the 3 SROIE
#: receipts 3508 px long lost 0.0047 of character accuracy and one exact field decoded at
#: 1754 px instead of full size, while 600-dpi A4 scans read as well at 1/4 scale and
#: halve the soak's peak growth.
LARGE_PAGE_PIXELS = 20_000_000
_DECODE_FLOOR = 2000


def _load(
    ref: PageRef,
    *,
    max_pixels: int,
    pdf_dpi: int,
    pdf_text: bool,
    pdf_passwords: Hidden,
    max_side: int | None,
    large: int | None,
) -> Page:
    # A page of ordinary size decodes whole: the preprocess may cut it down to a receipt,
    # and the OCR reads a long receipt in strips, so every pixel counts.  A larger JPEG
    # decodes at the engine's working size (libjpeg's reduced decoding is nearly free).
    if large is not None and ref.kind == "jpeg":
        max_side = large
    return load_page(
        ref,
        max_pixels=max_pixels,
        pdf_dpi=pdf_dpi,
        max_side=max_side,
        whole_pixels=LARGE_PAGE_PIXELS if large is not None else None,
        pdf_text=pdf_text,
        pdf_passwords=pdf_passwords,
    )


def page_loader(settings: DocumentSettings) -> Callable[[PageRef], Page]:
    """
    The load stage's work: one page decoded at the size ``settings`` ask for (blocking).

    With ``decode_max_side="engine"`` (the default), a JPEG, PNG or TIFF page of up to
    `LARGE_PAGE_PIXELS` decodes whole, and so does a PDF page that renders to no more;
    larger ones decode at the size the engine reads (at least 2000 pixels).
    """
    max_side = settings.decode_max_side
    large: int | None = None
    if max_side == "engine":
        large = engine_max_side(settings.ocr_engine, dict(settings.ocr_options))
        max_side = None if large is None else max(large, _DECODE_FLOOR)
    return partial(
        _load,
        max_pixels=settings.max_pixels,
        pdf_dpi=settings.pdf_dpi,
        pdf_text=settings.pdf_text,
        # Hidden: the partial's repr (a Ray actor's, a traceback's) shows no password.
        pdf_passwords=Hidden(settings.pdf_passwords),
        max_side=max_side,
        large=large,
    )


def _ocr_and_release(engine: Any, page: Page, *, above: int, every: int, pages: count[int]) -> Page:
    try:
        return ocr_page(engine, page)
    finally:
        if next(pages) % every == every - 1:
            release_memory(above)


def _encode(page: Page) -> dict[str, Any]:
    return page.to_json()


def _offline_correct(page: Page) -> Page:
    if page.text == "\n".join(line.text for line in page.lines):
        page.corrected = "\n".join(correct_lines(page.lines))
    else:  # text that is not its lines' (none here; an app's own stage might)
        page.corrected = correct_text(page.text)
    return page


def _offline_fix(page: Page) -> Page:
    page.corrected = fix_layout(page.corrected if page.corrected is not None else page.text)
    return page


def offline_fields(page: Page, *, fields: tuple[str, ...]) -> dict[str, Any]:
    """
    The offline rules' fields of a page (its corrected text, else its OCR text): the
    offline structure stage, and the ``fallback_fields`` of a page whose LLM stage failed.
    """
    text = page.corrected if page.corrected is not None else page.text
    return dict(extract_fields(text, page.lines, fields=fields))


def _offline_structure(page: Page, *, fields: tuple[str, ...]) -> Page:
    page.fields = offline_fields(page, fields=fields)
    return page


def build_pipeline(
    settings: DocumentSettings,
    llm: LlmStages | None = None,
    *,
    limits: Mapping[str, RateLimit] | None = None,
) -> DocumentPipeline:
    """
    Join the document stages into a `DocumentPipeline` over `PageRef` items.

    Args:
        settings: worker counts, engine and options.
        llm: the bound LLM stages (see `stages.llm.llm_stages`); ``None`` uses the
            offline fallbacks.
        limits: the shared limits the pipeline declares (the app's ``llm`` call limit,
            which its LLM client acquires, so ``--rate-limit llm=RATE`` can name it).

    Returns:
        The pipeline.  OCR and the three text stages are checkpointed, so a resumed run
        never repeats them (nor pays for an LLM call twice).
    """
    if settings.trim_every < 1:
        raise ConfigError(f"trim_every must be 1 or more, got {settings.trim_every}")
    if settings.malloc_tuning:
        tune_malloc()
    engine_name = settings.ocr_engine
    engine_options = dict(settings.ocr_options)

    def engine_factory() -> Any:
        return make_engine(engine_name, **engine_options)

    stages = [
        Stage(
            "load",
            page_loader(settings),
            kind="thread",
            workers=settings.workers_for("load"),
            retry=_NO_RETRY,
        ),
        Stage(
            "preprocess",
            partial(preprocess, options=settings.preprocess),
            kind="thread",
            workers=settings.workers_for("preprocess"),
            retry=_NO_RETRY,
            weight=page_bytes,
            max_weight=settings.max_queue_bytes,
        ),
        Stage(
            "ocr",
            (
                partial(
                    _ocr_and_release,
                    above=settings.trim_above,
                    every=settings.trim_every,
                    pages=count(),
                )
                if settings.malloc_tuning
                else ocr_page
            ),
            kind="thread",
            workers=settings.workers_for("ocr"),
            resource=engine_factory,
            retry=_NO_RETRY,
            weight=page_bytes,
            max_weight=settings.max_queue_bytes,
            version=f"{engine_name}-1",
            checkpoint=True,
            encode=_encode,
            decode=Page.from_json,
        ),
    ]
    offline: dict[str, Callable[[Page], Page]] = {
        "correct": _offline_correct,
        "fix": _offline_fix,
        "structure": partial(_offline_structure, fields=settings.fields),
    }
    chosen = settings.llm_stages if llm is not None else ()
    for name in LLM_STAGES:
        if llm is not None and name in chosen:
            stages.append(
                Stage(
                    name,
                    getattr(llm, name),
                    kind="async",
                    workers=settings.workers_for(name),
                    group="llm",
                    retry=llm.retry,
                    version=f"llm-{settings.model}-2",
                    checkpoint=True,
                    encode=_encode,
                    decode=Page.from_json,
                )
            )
        else:
            stages.append(
                Stage(
                    name,
                    offline[name],
                    kind="thread",
                    workers=settings.workers_for(name),
                    group="text",
                    retry=_NO_RETRY,
                    version="offline-1",
                    checkpoint=True,
                    encode=_encode,
                    decode=Page.from_json,
                )
            )
    if settings.ship_bytes:
        read = Stage(
            "read",
            read_page,
            workers=settings.workers_for("read"),
            retry=_NO_RETRY,
        )
        stages[0] = stages[0].replace(weight=encoded_bytes, max_weight=settings.max_queue_bytes)
        stages.insert(0, read)
    return DocumentPipeline(stages, max_buffer_size=settings.max_buffer_size, limits=limits)


def output_record(item: Item) -> dict[str, Any]:
    """
    The JSON line of one page: id, source, path (only when source is not its absolute
    path: a relative one), page, status, text, lines, corrected, fields,
    error (only when status is ``error``), turns (only when the OCR engine turned the page
    upright: quarter turns counter-clockwise, and the boxes are in the turned page),
    receipt (only for one of several receipts side by side on a scan: ``{"index": k,
    "of": n, "region": [x0, y0, x1, y1]}``, the region in the pixels of the whole page at
    full size, where the lines' boxes are too unless the engine turned the receipt),
    text_from (only when lines were read from
    a PDF's own text: ``"pdf"``, or
    ``"pdf+ocr"`` when OCR read some from the page's pictures), red_lightened (only when
    preprocess lightened a red stamp: the share of the page's pixels it changed; see
    ``--keep-red``), warnings (only when there are any: a JPEG that ended early, print
    smaller than :data:`SMALL_PRINT` pixels) and per-stage timings.
    """
    value = item.value
    page = value if isinstance(value, Page) else None
    ref = page.ref if page is not None else value if isinstance(value, PageRef) else None
    record: dict[str, Any] = {
        "id": item.key,
        "source": utf8_text(ref.source) if ref is not None else None,
    }
    if ref is not None and ref.path is not None and ref.path != ref.source:
        # Named relative to where the run started: a resume from elsewhere matches by it.
        record["path"] = utf8_text(ref.path)
    record |= {
        "page": ref.page if ref is not None else None,
        "status": "ok" if item.error is None else "error",
        "text": page.text if page is not None else "",
        "lines": [line.to_json() for line in page.lines] if page is not None else [],
        "corrected": page.corrected if page is not None else None,
        "fields": page.fields if page is not None else None,
    }
    if item.error is not None:
        record["error"] = item.error.to_json()
        if page is not None and page.fallback_fields is not None:
            record["fallback_fields"] = page.fallback_fields
    if ref is not None and ref.receipt is not None:
        index, of = ref.receipt
        record["receipt"] = {"index": index, "of": of}
        region = page.notes.get("load", {}).get("region") if page is not None else None
        if region:
            record["receipt"]["region"] = region
    turns = page.notes.get("ocr", {}).get("turns") if page is not None else None
    if turns:
        record["turns"] = turns
    bend = page.notes.get("ocr", {}).get("bend") if page is not None else None
    if bend:
        record["bend"] = bend
    red = page.notes.get("preprocess", {}).get("red") if page is not None else None
    if red:
        record["red_lightened"] = red
    read = page.notes.get("ocr", {}) if page is not None else {}
    if str(read.get("engine", "")).startswith("pdf text"):
        record["text_from"] = "pdf+ocr" if read.get("pictures") else "pdf"
    warnings = _warnings(page) if page is not None else []
    if warnings:
        record["warnings"] = warnings
    record["timings"] = {name: round(seconds, 6) for name, seconds in item.timings.items()}
    if page is not None and "llm" in page.notes:
        record["llm"] = page.notes["llm"]
    return record


def _warnings(page: Page) -> list[str]:
    """What a reader of the record should know of how the page was read."""
    warnings = []
    read = page.notes.get("load", {}).get("truncated")
    if read is not None:
        warnings.append(
            f"truncated: the file ends early; {read:.0%} of the page was read, the rest "
            "of it is missing"
            if read < 1
            else "truncated: the file ends early, but its whole page decoded (a file that "
            "lost only its last bytes, or a progressive JPEG's first passes, at a lower "
            "quality)"
        )
    damaged = page.notes.get("load", {}).get("damaged")
    if damaged is not None:
        read = page.notes["load"].get("read")
        warnings.append(
            f"damaged: the JPEG's compressed data is corrupt ({damaged}); "
            + (
                f"{read:.0%} of the page, above the damage, was read, the rest is cut off"
                if read is not None
                else "the page decoded, but below the damage it may be smeared and read wrong"
            )
        )
    frames = page.notes.get("load", {}).get("frames")
    if frames is not None:
        warnings.append(f"animated: the file holds {frames} pictures and only the first was read")
    for warned in page.notes.get("load", {}).get("pillow", []):
        warnings.append(f"decoder: Pillow warned while reading the page: {warned}")
    read = page.notes.get("ocr", {})
    scanned = read.get("line_height")
    height = read.get("read_height", scanned)
    if height is not None and height < SMALL_PRINT:
        # Scanning finer helps only when the scan itself is what is small: a long 600 dpi
        # receipt is read at 1/8 of its size, and "scan at 200 dpi or more" would be
        # wrong advice for it.
        why = (
            f"the page was read at {height / scanned:.0%} of its size"
            if scanned is not None and scanned >= SMALL_PRINT
            else "scan at 200 dpi or more"
        )
        warnings.append(
            f"small print: its lines are {height:g} px tall as OCR read them, under "
            f"{SMALL_PRINT} px; fields are often misread so ({why})"
        )
    sure = read.get("median_confidence")
    if sure is not None and sure < UNSURE:
        warnings.append(
            f"unsure reading: OCR read its median line with {sure:.2f} confidence, under "
            f"{UNSURE}; its text and fields are likely misread (a blurred or smeared scan)"
        )
    if read.get("blank"):
        warnings.append(
            "blank page: it holds no ink, so OCR did not read it (--read-blank, or "
            "PreprocessOptions(skip_blank=False), reads such pages)"
        )
    elif "lines" in read and not read["lines"]:
        warnings.append(
            "no text: OCR found no text on the page (a blank page, or print too small or "
            "faint to read)"
        )
    return warnings
