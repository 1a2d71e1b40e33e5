"""
The command-line options of the LLM stages, and the typed settings built from them.

The document app adds them with `add_arguments` and reads them back with
`LlmOptions.from_args`, so the LLM options live beside the code that uses them.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asyncpipe import (
    ConfigError,
    CostBudget,
    RateLimit,
    Retry,
    parse_cost,
    parse_prices,
    parse_rate,
)

from ._guard import DEFAULT_MIN_SIMILARITY
from ._limits import LlmLimits, prompt_tokens
from ._stages import DEFAULT_RETRY, structure_max_tokens, text_max_tokens
from ._structured import STRUCTURED_MODES

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._client import LlmClient
    from ._schema import Schema
    from ._statistics import LlmStatistics

__all__ = ["LLM_STAGE_NAMES", "LlmOptions", "add_arguments", "timeout_advice"]

LLM_STAGE_NAMES = ("correct", "fix", "structure")

# --llm-timeout's default, in seconds (its --help says so).  The option's own default is
# None, so that a run can tell a timeout given from this one.
_TIMEOUT = 60.0


def _stage_list(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in LLM_STAGE_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown LLM stage {', '.join(unknown)}; choose from {', '.join(LLM_STAGE_NAMES)}"
        )
    return names


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(group: argparse._ActionsContainer) -> None:
    """
    Add the LLM stage options (``--llm-stages``, ``--llm-structured``, the limits and the
    correction guard) to a parser or argument group.
    """
    group.add_argument(
        "--llm-stages",
        type=_stage_list,
        default=LLM_STAGE_NAMES,
        metavar="STAGES",
        help="which text stages call the LLM, comma-separated (default correct,fix,structure);"
        " the others run their offline fallbacks",
    )
    group.add_argument(
        "--llm-structured",
        choices=STRUCTURED_MODES,
        default="auto",
        help="structured outputs for structure: json_schema (strict), json_object or off "
        "(prompt only); auto (default) starts at json_schema and falls back once per run "
        "if the server refuses it",
    )
    group.add_argument(
        "--llm-deadline",
        type=float,
        default=None,
        help="seconds one LLM call may take, all attempts and waits included (default "
        f"{DEFAULT_RETRY.deadline:g}, or, when --llm-timeout is longer, room for each try "
        "of a timed-out generation: timeout x (timeout retries + 1))",
    )
    group.add_argument(
        "--llm-attempts",
        type=_positive_int,
        default=DEFAULT_RETRY.attempts,
        help=f"attempts per LLM call, the first included (default {DEFAULT_RETRY.attempts})",
    )
    group.add_argument(
        "--llm-timeout-retries",
        type=int,
        default=1,
        help="how often a timed-out generation is retried (default 1): each retry starts "
        "the generation over",
    )
    group.add_argument(
        "--llm-concurrency",
        type=_positive_int,
        metavar="N",
        help="the most LLM requests in flight at once (default: a llama.cpp server's "
        "slots, which it tells; else no cap but the stages' workers). A server queues "
        "what it cannot serve at once, and the queued requests' timeouts run: set it to "
        "an Ollama server's OLLAMA_NUM_PARALLEL",
    )
    group.add_argument(
        "--llm-min-similarity",
        type=float,
        default=DEFAULT_MIN_SIMILARITY,
        help="the correction guard: a correct or fix reply less similar to its input "
        f"(0-100) is rejected and the input kept (default {DEFAULT_MIN_SIMILARITY:g})",
    )
    group.add_argument(
        "--llm-text-max-tokens",
        type=_positive_int,
        help="max_tokens of correct and fix replies (default: the input's UTF-8 bytes plus 32)",
    )
    group.add_argument(
        "--llm-structure-max-tokens",
        type=_positive_int,
        help="max_tokens of structure replies (default: from the schema)",
    )
    group.add_argument(
        "--token-limit",
        metavar="RATE",
        help="tokens all LLM calls may use per window, e.g. 200000/min, never passed in any "
        "window: each call reserves its prompt (estimated) plus max_tokens and settles with "
        "the usage the server reports (default: no limit)",
    )
    group.add_argument(
        "--llm-key-header",
        default="Authorization",
        metavar="NAME",
        help="the header that carries the API key: Authorization (default) sends 'Bearer "
        "KEY', any other name (api-key, x-api-key) the key alone",
    )
    group.add_argument(
        "--no-llm-feedback",
        dest="llm_feedback",
        action="store_false",
        help="ignore the server's x-ratelimit-* headers, and after a 429 retry only the call "
        "that got it instead of pausing every call",
    )
    group.add_argument(
        "--llm-prices",
        metavar="IN,OUT",
        help="prices per million prompt and completion tokens, e.g. 0.15,0.60: the summary "
        "counts the cost",
    )
    group.add_argument(
        "--max-cost",
        metavar="COST",
        help="with --llm-prices: stop taking new pages once the spend would pass COST, "
        "finish the calls running and exit 4 (continue with --resume)",
    )


@dataclass(frozen=True, slots=True)
class LlmOptions:
    """
    The LLM stage settings of one run.

    Attributes:
        stages: the text stages that call the LLM; the others run offline.
        structured: the structured-output mode (see `StructuredOutputs`).
        deadline: seconds per call, attempts and waits included.
        attempts: attempts per call.
        timeout_retries: retries of a timed-out generation.
        min_similarity: the correction guard's threshold, 0-100.
        text_max_tokens: a fixed ``max_tokens`` for correct and fix, or ``None`` (derived).
        structure_max_tokens: a fixed ``max_tokens`` for structure, or ``None`` (derived).
        token_limit: the ``--token-limit`` rate, e.g. ``"200000/min"``, or ``None``.
        prices: prompt and completion prices per million tokens, or ``None``.
        max_cost: the cost ceiling, or ``None``.
        feedback: follow the server's rate-limit headers and pause all calls after a 429.
        concurrency: the most requests in flight at once, or ``None`` (see `LlmClient`).
        key_header: the header that carries the API key (see `LlmClient`).
        timeout: seconds one request may take (``--llm-timeout``).
        timeout_given: whether ``--llm-timeout`` was given (on the command line or in a
            ``--config`` file), not its default.
        key_env: the environment variables the API key is read from, in order (the one
            ``--llm-key-env`` names, else the two it defaults to), for the messages.
    """

    stages: tuple[str, ...] = LLM_STAGE_NAMES
    structured: str = "auto"
    deadline: float = 180.0
    attempts: int = 5
    timeout_retries: int = 1
    min_similarity: float = DEFAULT_MIN_SIMILARITY
    text_max_tokens: int | None = None
    structure_max_tokens: int | None = None
    token_limit: str | None = None
    prices: tuple[float, float] | None = None
    max_cost: float | None = None
    feedback: bool = True
    concurrency: int | None = None
    key_header: str = "Authorization"
    timeout: float = _TIMEOUT
    timeout_given: bool = False
    key_env: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_cost is not None and self.prices is None:
            raise ConfigError("--max-cost needs --llm-prices PROMPT,COMPLETION to count the cost")
        self.token_rate()  # validates it
        if not self.deadline > 0:
            raise ConfigError(f"--llm-deadline must be positive, got {self.deadline}")
        if self.timeout_retries < 0:
            raise ConfigError(f"--llm-timeout-retries must be >= 0, got {self.timeout_retries}")
        if not 0 <= self.min_similarity <= 100:
            raise ConfigError(
                f"--llm-min-similarity must be within 0-100, got {self.min_similarity}"
            )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LlmOptions:
        """
        Read the options `add_arguments` added, and ``--llm-timeout`` (``None``: not
        given, 60 s).
        """
        from .._arguments import DEFAULT_KEY_ENV  # it imports this module

        given: float | None = getattr(args, "llm_timeout", None)
        timeout = _TIMEOUT if given is None else given
        named: str | None = getattr(args, "llm_key_env", None)
        return cls(
            stages=tuple(args.llm_stages),
            structured=args.llm_structured,
            deadline=_deadline(args, timeout),
            attempts=args.llm_attempts,
            timeout_retries=args.llm_timeout_retries,
            min_similarity=args.llm_min_similarity,
            text_max_tokens=args.llm_text_max_tokens,
            structure_max_tokens=args.llm_structure_max_tokens,
            token_limit=args.token_limit,
            prices=parse_prices(args.llm_prices) if args.llm_prices else None,
            max_cost=parse_cost(args.max_cost) if args.max_cost else None,
            feedback=args.llm_feedback,
            concurrency=args.llm_concurrency,
            key_header=args.llm_key_header,
            timeout=timeout,
            timeout_given=given is not None,
            key_env=(named,) if named else (DEFAULT_KEY_ENV, "OPENAI_API_KEY"),
        )

    def token_rate(self) -> RateLimit | None:
        """
        A new token limit from ``token_limit``, with a jitter margin of 1/120 of its period
        (0.5 s a minute), or ``None``.

        Raises:
            ConfigError: the rate cannot be read.
        """
        if self.token_limit is None:
            return None
        rate = parse_rate(self.token_limit)
        return RateLimit(rate.limit, rate.period, margin=rate.period / 120)

    def limits(self) -> LlmLimits:
        """
        The run's shared LLM limits: the token limit and the cost budget.
        """
        budget = None
        if self.prices is not None:
            budget = CostBudget(*self.prices, max_cost=self.max_cost)
        return LlmLimits(self.token_rate(), budget, self.feedback)

    def check_ceiling(self, schema: Schema) -> None:
        """
        Check that one call of each LLM stage can fit under the cost ceiling.

        A call reserves its worst case (its prompt plus ``max_tokens``) before it is sent;
        one whose worst case is over ``max_cost`` can never run, whatever was spent.  The
        least any call of a stage reserves is known at the start: a prompt of one empty
        message, plus the ``max_tokens`` given or derived (structure: from the schema;
        correct and fix: from an empty input, which a page's text only raises).

        Args:
            schema: the structure stage's schema.

        Raises:
            ConfigError: a stage's least worst case is over the ceiling: every page
                would stop at that call.
        """
        if self.max_cost is None or self.prices is None:
            return
        budget = CostBudget(*self.prices)
        prompt = prompt_tokens([{"role": "system", "content": ""}])
        for stage in self.stages:
            if stage == "structure":
                option = "--llm-structure-max-tokens"
                completion = self.structure_max_tokens or structure_max_tokens(schema)
            else:
                option = "--llm-text-max-tokens"
                completion = self.text_max_tokens or text_max_tokens("")
            least = budget.cost(prompt, completion)
            if least > self.max_cost:
                raise ConfigError(
                    f"--max-cost {self.max_cost:g} is below what one {stage} call may cost "
                    f"on any page: at least {least:.6g} at --llm-prices "
                    f"{self.prices[0]:g},{self.prices[1]:g} (max_tokens {completion}, plus "
                    f"the prompt), so no page could pass it: raise --max-cost, or lower "
                    f"{option}"
                )

    def check_timeout(self, client: LlmClient) -> None:
        """
        Warn, once at the start, when `LlmClient.check` found a llama.cpp server and
        ``--llm-timeout`` was not given: its 60 s default suits a hosted API or a GPU,
        and is often too short for a model served on CPU, where every page would time out
        before the summary's advice came.  A timeout given, even 60, is the user's choice.
        """
        if client.llama_cpp and not self.timeout_given:
            logging.getLogger("stages.llm").warning(
                "the LLM server is llama.cpp: each request may take %g s (--llm-timeout's "
                "default), often too short for a model served on CPU; give --llm-timeout "
                "300 for one (a longer timeout costs a fast server nothing)",
                self.timeout,
            )

    def retry(self) -> Retry:
        """
        The retry policy of the LLM stages.
        """
        return Retry(
            attempts=self.attempts,
            base=DEFAULT_RETRY.base,
            cap=DEFAULT_RETRY.cap,
            retry_after_cap=self.deadline if self.deadline is not None else math.inf,
            deadline=self.deadline,
        )

    def client_kwargs(self) -> dict[str, Any]:
        """
        Keyword arguments for `LlmClient`.
        """
        return {
            "timeout_retries": self.timeout_retries,
            "prices": self.prices,
            "concurrency": self.concurrency,
            "api_key_header": self.key_header,
            "key_env": self.key_env,
        }

    def stage_kwargs(self) -> dict[str, Any]:
        """
        Keyword arguments for `llm_stages`.
        """
        return {
            "structured": self.structured,
            "retry": self.retry(),
            "min_similarity": self.min_similarity,
            "text_max_tokens": self.text_max_tokens,
            "structure_max_tokens": self.structure_max_tokens,
        }


def _deadline(args: argparse.Namespace, timeout: float) -> float:
    """``--llm-deadline``, or its default: long enough for ``--llm-timeout``'s tries.

    A deadline under one request's timeout cut every slow generation short at 180 s
    whatever ``--llm-timeout 300`` said (llama.cpp on 2 cores).
    One given shorter than the timeout is the user's to choose (a fast failure), and is
    only warned of.
    """
    if args.llm_deadline is None:
        tries: int = args.llm_timeout_retries + 1
        return max(float(DEFAULT_RETRY.deadline or 0.0), timeout * tries)
    if 0 < args.llm_deadline < timeout:
        logging.getLogger("stages.llm").warning(
            "--llm-deadline %g is shorter than one request's timeout (--llm-timeout %g): "
            "a slower generation is cut at the deadline",
            args.llm_deadline,
            timeout,
        )
    return float(args.llm_deadline)


def timeout_advice(
    statistics: LlmStatistics,
    timeout: float | None,
    concurrency: int | None = None,
    stages: Sequence[str] = LLM_STAGE_NAMES,
) -> str | None:
    """
    One plain sentence for the run summary when most requests timed out, else ``None``.

    Args:
        statistics: the client's statistics.
        timeout: the per-attempt timeout in seconds.
        concurrency: the client's cap on requests at once, or ``None`` (no cap: a server
            that queues requests may have timed them out in its queue).
        stages: the text stages that called the LLM: the advice names the max_tokens
            options of these only.
    """
    timeouts = statistics.failures.get("timeout", 0)
    if not timeouts or timeouts * 2 <= statistics.attempts:
        return None
    speed = statistics.tokens_per_second
    measured = (
        f"the server generated {speed:.1f} tokens/s per request"
        if speed is not None
        else "no request finished, so no speed could be measured"
    )
    slots = statistics.server_slots
    if concurrency is not None and slots is not None and concurrency > slots:
        # The requests beyond the server's slots queued there, their timeouts running.
        return (
            f"Most LLM requests timed out ({timeouts} of {statistics.attempts}, "
            f"--llm-timeout {timeout}s): --llm-concurrency {concurrency} is more than the "
            f"server's {slots} slot{'' if slots == 1 else 's'}, so requests queued at the "
            f"server and their wait there counted against --llm-timeout ({measured}, that "
            f"wait included): give --llm-concurrency {slots}, or leave it out (the client "
            "then sends as many at once as the server has slots)."
        )
    queued = (
        ""
        if concurrency is not None
        else "; a server that serves few requests at once queues the rest, and their "
        "timeouts run there: give --llm-concurrency (an Ollama server's OLLAMA_NUM_PARALLEL)"
    )
    shorter = [
        option
        for option, names in (
            ("--llm-text-max-tokens", {"correct", "fix"}),
            ("--llm-structure-max-tokens", {"structure"}),
        )
        if names & set(stages)
    ]
    lower = f" (or lower {' or '.join(shorter)})" if shorter else ""
    return (
        f"Most LLM requests timed out ({timeouts} of {statistics.attempts}, "
        f"--llm-timeout {timeout}s): {measured}; raise --llm-timeout{lower} for this "
        f"server{queued}."
    )
