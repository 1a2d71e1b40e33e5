"""
The benchmark harness of the document pipeline (see `main`).

It lives in ``benchmarks/``, outside the installed packages.  Run it as
``python benchmarks/bench.py`` (or ``python -m docbench`` with ``benchmarks/`` on the path);
it finds the receipts through its arguments or ``$ASYNCPIPE_SROIE``, never by a path
relative to the source tree.

It runs the real pipeline (load → preprocess → rapidocr → three LLM calls) on receipts
against the local OpenAI-compatible test server with a set latency, sweeps OCR and LLM
worker counts, runs the sequential baseline and the stage-by-stage ``ThreadPoolExecutor``
pattern over the same configs and items (best against best, and the spread at equal
configs), times the bare OCR engine as an independent bound (`OcrComparison`), compares
every run with its theoretical bound, advises worker counts and checks the advice, and
writes a table, a JSON file and a plot.
"""

from __future__ import annotations

from ._main import main as main
from ._model import Advice as Advice
from ._model import Bound as Bound
from ._model import Capacities as Capacities
from ._model import Config as Config
from ._model import advise as advise
from ._model import bound as bound
from ._model import max_in_window as max_in_window
from ._model import min_makespan as min_makespan
from ._model import rate_utilisation as rate_utilisation
from ._ocrbound import OcrComparison as OcrComparison
from ._ocrbound import measure_ocr as measure_ocr
from ._ocrbound import ocr_on_engines as ocr_on_engines
from ._ratecheck import RateCheck as RateCheck
from ._ratecheck import run_rate_check as run_rate_check
from ._ray import RayComparison as RayComparison
from ._ray import run_comparison as run_comparison

__all__ = [
    "Advice",
    "Bound",
    "Capacities",
    "Config",
    "OcrComparison",
    "RateCheck",
    "RayComparison",
    "advise",
    "bound",
    "main",
    "max_in_window",
    "measure_ocr",
    "min_makespan",
    "ocr_on_engines",
    "rate_utilisation",
    "run_comparison",
    "run_rate_check",
]
