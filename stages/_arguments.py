"""
The document app's command-line options (the ``documents`` group of ``asyncpipe run
--help``), and the checks of their values.

`stages.app.DocumentApp.add_arguments` adds them; the LLM stages' own options come from
`stages.llm.add_arguments`, inside the same group.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .inputs._stdin import DEFAULT_MAX_STDIN_BYTES
from .llm._options import add_arguments as add_llm_arguments
from .ocr import ENGINES

__all__ = ["DEFAULT_KEY_ENV", "DEFAULT_MODEL", "add_arguments", "llm_options_given"]

DEFAULT_KEY_ENV = "ASYNCPIPE_LLM_API_KEY"
DEFAULT_MODEL = "gpt-4o-mini"

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the document app's options to ``parser``, as one ``documents`` group."""
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
    add_llm_arguments(group)
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


def llm_options_given(args: argparse.Namespace) -> list[str]:
    """The LLM options ``args`` hold at other than their defaults, by flag."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    return [
        action.option_strings[0]
        for action in parser._actions
        if action.dest in _LLM_DESTS
        and getattr(args, action.dest, action.default) != action.default
    ]


def _seconds(text: str) -> float:
    """``--llm-timeout``: a positive number of seconds, refused alike with ``--llm-url``
    and without, so a wrong value is exit 2 whether or not an LLM is called."""
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
