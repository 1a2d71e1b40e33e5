"""
Shared helpers of the reliability tests: synthetic receipts, the CLI as a subprocess,
and tolerant readers of the JSON-lines output and journal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "DRIVER",
    "LLM_STAGES",
    "RECEIPTS",
    "CliResult",
    "count_lines",
    "llm_run_args",
    "llm_checkpoints",
    "make_receipt",
    "read_lines",
    "run_cli",
    "spawn_cli",
    "write_receipts",
]

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("cli_driver.py")
LLM_STAGES = ("correct", "fix", "structure")
_SYSTEM_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")


def _font_path() -> str:
    """DejaVu Sans Mono: the system copy, else the one matplotlib (a test dependency) ships."""
    if _SYSTEM_FONT.exists():
        return str(_SYSTEM_FONT)
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSansMono.ttf")


FONT = _font_path()

# Small receipts: rapidocr scales every page to about 736 px, so a small page costs
# about 1 s of OCR per thread here, against 1.5-3 s for a real SROIE scan.
RECEIPTS: dict[str, list[str]] = {
    "kedai.png": [
        "KEDAI MAJU SDN BHD",
        "12 JALAN BUNGA, 43000 KAJANG",
        "DATE: 12/03/2018",
        "T0TAL 10.50",
    ],
    "restoran.png": [
        "RESTORAN SRI MELAKA",
        "NO 8 JALAN TUN, 75000 MELAKA",
        "05/01/2019",
        "TOTAL 23.90",
    ],
    "farmasi.jpg": [
        "FARMASI SIHAT ENTERPRISE",
        "LOT 3, 50450 KUALA LUMPUR",
        "DATE 28-02-2018",
        "TOTAL RM 7.20",
    ],
    "hardware.png": [
        "SYARIKAT BESI TRADING",
        "88 JALAN BESI, 81200 JOHOR",
        "17.06.2018",
        "TOTAL 145.00",
    ],
    "kopi.png": ["KOPI JAYA LTD", "2 LORONG 4, 10200 PENANG", "DATE: 01/12/2017", "TOTAL 4.80"],
    "buku.png": [
        "KEDAI BUKU ILMU SDN BHD",
        "9 JALAN ILMU, 30000 IPOH",
        "DATE: 30/09/2018",
        "TOTAL 56.35",
    ],
    "roti.jpg": [
        "ROTI SEGAR TRADING",
        "21 JALAN PASAR, 70000 SEREMBAN",
        "DATE: 03/04/2018",
        "TOTAL 8.40",
    ],
    "tayar.png": [
        "BENGKEL TAYAR SDN BHD",
        "5 JALAN KILANG, 20000 KUALA TERENGGANU",
        "11-11-2017",
        "TOTAL 320.00",
    ],
}


def make_receipt(path: Path, lines: list[str], *, size: tuple[int, int] = (380, 130)) -> Path:
    """Draw ``lines`` of black text on a small white page and save it (type by suffix)."""
    font = ImageFont.truetype(FONT, 16)
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((8, 6 + i * 28), line, font=font, fill=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def write_receipts(folder: Path, names: list[str] | None = None) -> list[Path]:
    """Write the synthetic receipts into ``folder``."""
    return [make_receipt(folder / name, RECEIPTS[name]) for name in (names or list(RECEIPTS))]


def llm_run_args(
    inputs: Path,
    out: Path,
    url: str,
    *extra: str,
    workers: str = "ocr=2,llm=2",
    rate_limit: str = "1000/s",
) -> list[str]:
    """The ``run`` arguments of a quiet document run with the LLM stages against ``url``."""
    return [
        "run",
        str(inputs),
        "--out",
        str(out),
        "--llm-url",
        url,
        "--llm-model",
        "asyncpipe-test",
        "--workers",
        workers,
        "--rate-limit",
        rate_limit,
        "--progress",
        "none",
        "--log-level",
        "WARNING",
        *extra,
    ]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # Only the sabotage switch (see cli_driver.py) passes through from the test run.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RELIABILITY_", "ASYNCPIPE_")) or k == "RELIABILITY_SABOTAGE"
    }
    env.pop("OPENAI_API_KEY", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def spawn_cli(
    args: list[str], *, env: dict[str, str] | None = None, log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start the CLI (through the fault-injecting driver) with stderr+stdout to ``log``."""
    with open(log, "ab") as fh:
        return subprocess.Popen(
            [sys.executable, str(DRIVER), *args],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=cli_env(env),
            cwd=cwd or ROOT,
        )


@dataclass
class CliResult:
    returncode: int
    output: str
    seconds: float


def run_cli(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    log: Path,
    cwd: Path | None = None,
    timeout: float = 100.0,
) -> CliResult:
    """Run the CLI to the end; return its exit code and what it printed."""
    start = time.monotonic()
    before = log.stat().st_size if log.exists() else 0
    process = spawn_cli(args, env=env, log=log, cwd=cwd)
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    text = log.read_bytes()[before:].decode("utf-8", "replace")
    return CliResult(code, text, time.monotonic() - start)


def read_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """
    Parse a JSON-lines file written by appending whole lines.

    Returns:
        The records and the length of a torn last line (0 if none).

    Raises:
        AssertionError: a line other than an unterminated last one does not parse.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    parts = data.split(b"\n")
    records = []
    for number, line in enumerate(parts[:-1], start=1):
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            raise AssertionError(f"{path} line {number} does not parse: {line[:120]!r}") from None
    return records, len(parts[-1])


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def llm_checkpoints(journal: Path) -> set[tuple[str, str]]:
    """The (item, LLM stage) pairs whose result the journal holds."""
    events, _ = read_lines(journal)
    return {(e["k"], e["s"]) for e in events if e.get("ev") == "ckpt" and e["s"] in LLM_STAGES}


def request_key(request: dict[str, Any]) -> tuple[str, str]:
    """The (item, task) of a server log record."""
    return unquote(request["item"] or ""), request["task"]
