"""
The ``asyncpipe`` argument parser, and the typed `RunOptions` it yields.

The framework's ``run`` options speak of items and stages; the app adds its own in its
own argument group, and receives them apart (``RunOptions.app_options``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._app import App, RunOptions
from ._config import config_defaults, parse_limits, parse_names, parse_workers
from ._exceptions import ConfigError
from ._ratelimit import parse_rate

# Internal to the command line: nothing here is public API.
__all__: list[str] = []

COMMANDS = ("run", "journal")
#: The README's table of exit codes, in brief (a test holds the two to the same codes).
EPILOG = (
    "exit codes: 0 done, 1 failed, 2 usage or no input, 3 done with error records "
    "(--fail-on-error), 4 stopped by the app (e.g. its cost ceiling, or a server asking "
    "for a long wait, refusing every call or unreachable; continue with --resume), 130/143 "
    "interrupted (continue with --resume)"
)

#: The ``--log-level`` names (logging's), in any case on the command line.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: ``asyncpipe journal ACTION``, and what each does.
JOURNAL_ACTIONS = {
    "show": "count the journal's events, items done (ok and error), items not done ok "
    "with checkpoints, dead checkpoints (of items the output holds written ok, whose done "
    "lines the journal lost) and a torn tail's bytes, and name its corrupt lines",
    "compact": "rewrite the journal with only what a resume needs: one line per item "
    "done, and for the others the latest checkpoint of each stage (a stage whose version "
    "changed restarts after the one before it) and their last failure; dead checkpoints "
    "and corrupt lines are dropped (refused while a run has it open)",
}


def app_spec(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """
    The ``--app`` value and the command of ``argv``, read before the app is loaded
    (the app adds options to ``run``, so it must be known before parsing).
    """
    spec = None
    command = None
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--app" and i + 1 < len(args):
            spec = args[i + 1]
        elif arg.startswith("--app="):
            spec = arg.partition("=")[2]
        elif command is None and arg in COMMANDS and (i == 0 or args[i - 1] != "--app"):
            command = arg
    return spec, command


def add_run_arguments(
    parser: argparse.ArgumentParser, argv: Sequence[str] = (), app: App | None = None
) -> None:
    """
    The framework's ``run`` options; ``argv``, the command line, lets a malformed
    ``--workers`` or ``--rate-limit`` say what was meant (`pairs_option`).

    The app may say what its inputs are (``inputs_help``, a string: INPUT's help) and
    give a ``--workers`` value that names its own stages (``workers_example``, e.g.
    ``"ocr=2,llm=32"``); without them the help says neither, in words not to be copied.
    """
    inputs_help = getattr(app, "inputs_help", None) or "the inputs, as the app reads them"
    example = getattr(app, "workers_example", None)
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help=inputs_help)
    parser.add_argument(
        "--config",
        type=Path,
        help="a TOML file of these options, each under its name: unordered = true, "
        'log-level = "DEBUG" (the command line wins)',
    )
    # Text, not a Path: a Path drops the trailing slash of ``--out results/``.
    parser.add_argument("--out", "-o", help="the JSON-lines output file (required)")
    parser.add_argument("--journal", help="the checkpoint journal (default: OUT.journal)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run: skip finished items, reuse checkpoints",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume, run the items that failed before again",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing output instead of refusing"
    )
    order = parser.add_mutually_exclusive_group()
    order.add_argument(
        "--unordered",
        dest="ordered",
        action="store_false",
        help="write items as they finish (default: in input order)",
    )
    order.add_argument("--ordered", dest="ordered", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--workers",
        type=pairs_option("--workers", parse_workers, "not NAME=COUNT", "--workers llm=32", argv),
        metavar="NAME=COUNT,...",
        help=f"worker counts by stage or group name, e.g. {example}"
        if example
        else "worker counts by the app's stage or group names, as NAME=COUNT pairs "
        "separated by commas",
    )
    parser.add_argument(
        "--rate-limit",
        metavar="[NAME=]RATE",
        type=pairs_option(
            "--rate-limit",
            parse_limits,
            "neither a RATE nor NAME=RATE",
            "--rate-limit llm=10/s, or --rate-limit 10/s for every limit",
            argv,
        ),
        help="the shared limits stages declare, e.g. llm=150/min; a bare RATE sets every "
        "declared limit (default: the app's)",
    )
    parser.add_argument(
        "--fail-on-error",
        action="store_true",
        help="exit 3 if any item ended as an error record, or an input could not be read "
        "(a resume kept its lines from before)",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "rich", "log", "json", "none"),
        default="auto",
        help="a bar and stage table on a terminal, log lines otherwise (default auto); "
        "json: one JSON object per interval on stdout ($ASYNCPIPE_PROGRESS_INTERVAL s, "
        "default 5)",
    )
    parser.add_argument(
        "--log-level",
        type=_log_level,
        default="INFO",
        metavar="LEVEL",
        help=f"logging level, any case: {', '.join(LOG_LEVELS)} (default INFO)",
    )
    parser.add_argument(
        "--executor",
        choices=("threads", "ray"),
        default="threads",
        help="where thread stages run: local threads (default) or Ray actors",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="run on this Ray cluster: auto, ray://HOST:10001 or HOST:6379 "
        "(implies --executor ray; without it Ray starts a local cluster)",
    )
    parser.add_argument(
        "--ray-stages",
        metavar="NAMES",
        help="thread stages (or groups) to run on Ray, e.g. ocr (default: the thread "
        "stages with a per-worker resource)",
    )


def _log_level(text: str) -> str:
    """``--log-level``'s value in logging's case, or a usage error (exit 2) that lists
    the levels: `logging.basicConfig` raised ``ValueError`` at a name it lacks, a
    traceback.  A type and not ``choices``, since argparse checks ``choices`` on the
    command line only, and this is also how a ``--config`` file's value is read."""
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a log level (choose from {', '.join(LOG_LEVELS)}, any case)"
        )
    return level


def pairs_option(
    option: str,
    parse_value: Callable[[str], object],
    form: str,
    example: str,
    argv: Sequence[str],
) -> Callable[[str], str]:
    """
    The argparse ``type`` of ``option``, whose values ``parse_value`` reads: it returns
    the text unchanged once ``parse_value`` accepts it, and makes anything else a usage
    error that shows the right ``form`` and an ``example``.

    A space typed for the ``=`` (``--rate-limit llm 10/s``) gave the option the bare name
    and made the rate an INPUT; when the word after the value on the command line
    (``argv``) completes it, the error says what was meant.
    """

    def check(text: str) -> str:
        try:
            parse_value(text)
        except ConfigError as exc:
            # A bare word is a name without its value; else the parser says what is wrong.
            problem = str(exc) if "=" in text or "/" in text else f"{text!r} is {form}"
            meant = _meant(option, text, parse_value, argv)
            raise argparse.ArgumentTypeError(f"{problem}; e.g. {example}{meant}") from None
        return text

    return check


def _meant(
    option: str, text: str, parse_value: Callable[[str], object], argv: Sequence[str]
) -> str:
    """
    ``". Did you mean ...?"`` when the words after ``text`` in ``argv`` complete it to a
    value ``parse_value`` accepts; else nothing.  They complete it joined by ``=`` (a
    space typed for the ``=``: ``--rate-limit x 10/s``) or run together at a ``/`` (a
    space typed inside a rate: ``--rate-limit 10 /s``, ``10/ s``, ``10 / s``).
    """
    args = list(argv)
    for i, arg in enumerate(args[:-1]):
        if arg not in (text, f"{option}={text}"):
            continue
        for joined, used in _completions(text, args[i + 1 : i + 3]):
            try:
                parse_value(joined)
            except ConfigError:
                continue
            read = (
                f"{used[0]!r} was read as an INPUT"
                if len(used) == 1
                else f"{used[0]!r} and {used[1]!r} were read as INPUTs"
            )
            return f". Did you mean {option} {joined}? ({read})"
    return ""


def _completions(text: str, after: list[str]) -> list[tuple[str, list[str]]]:
    """The values ``text`` and the one or two words ``after`` it may have been meant as,
    with the words each takes (see `_meant`)."""
    word = after[0]
    found = [(f"{text.rstrip('=')}={word.lstrip('=')}", [word])]
    if text.endswith("/") or word.startswith("/"):
        found.append((text + word, [word]))
    if word == "/" and len(after) > 1:
        found.append((text + word + after[1], after))
    return found


def _rate_tail(run: argparse.ArgumentParser, args: argparse.Namespace, argv: Sequence[str]) -> None:
    """
    An app's option of metavar ``RATE`` and no ``type`` (``--token-limit``) is read when
    the run starts; a space typed inside its rate (``--token-limit 200000 /min``) is a
    usage error now, that says what was meant, as ``--rate-limit``'s is.
    """
    for action in run._actions:
        value = getattr(args, action.dest, None)
        if action.metavar != "RATE" or action.type is not None or not isinstance(value, str):
            continue
        try:
            parse_rate(value)
        except ConfigError as exc:
            for option in action.option_strings:
                meant = _meant(option, value, parse_rate, argv)
                if meant:
                    run.error(f"argument {option}: {exc}{meant}")


def build_parser(
    app: App | None, argv: Sequence[str] = ()
) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """
    The whole parser and its ``run`` subparser; without an app, ``run`` has only the
    framework's options.  ``argv`` is the command line it will parse, for its errors.
    """
    parser = argparse.ArgumentParser(
        prog="asyncpipe",
        description="Run a pipeline over many input items, resumably.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "--app",
        metavar="NAME",
        help="the app to run: an installed app's name or module:attribute "
        "(default: $ASYNCPIPE_APP, or the only app installed)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help=app.description if app is not None else "run the app", epilog=EPILOG
    )
    add_run_arguments(run, argv, app)
    run.add_argument("--app", metavar="NAME", help=argparse.SUPPRESS)
    if app is not None:
        app.add_arguments(run)
    journal = commands.add_parser(
        "journal",
        help="inspect or compact a run's checkpoint journal",
        description="Inspect or compact a run's checkpoint journal (by default the "
        "output's name with .journal added: results.jsonl.journal).",
    )
    actions = journal.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in JOURNAL_ACTIONS.items():
        command = actions.add_parser(action, help=text, description=text[0].upper() + text[1:])
        command.add_argument("path", type=Path, metavar="JOURNAL", help="the journal file")
        command.add_argument(
            "--out",
            type=Path,
            metavar="OUTPUT",
            help="the run's output, which says which items are written (default: the "
            "journal's name without .journal, results.jsonl for results.jsonl.journal, if "
            "that file exists)",
        )
    return parser, run


def parse(argv: Sequence[str], app: App | None) -> tuple[argparse.Namespace, set[str]]:
    """
    Parse ``argv`` (with a ``--config`` file's values as defaults).

    Returns:
        The namespace, and the names of the options the app added.
    """
    parser, run = build_parser(None)
    framework = {action.dest for action in run._actions}
    parser, run = build_parser(app, argv)
    app_dests = {action.dest for action in run._actions} - framework
    args = _parse_intermixed(parser, argv)
    if args.command == "run" and args.config is not None:
        run.set_defaults(**config_defaults(args.config, run))
        args = _parse_intermixed(parser, argv)
        if not args.inputs:
            args.inputs = run.get_default("inputs") or []
    if args.command == "run":
        _rate_tail(run, args, argv)
    return args, app_dests


def _parse_intermixed(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """
    ``parser.parse_args(argv)``, with the inputs given after an option taken as inputs too
    (``run a.jpg --out x.jsonl b.jpg``): argparse ends a positional list at the first
    option and refused the rest.  (``parse_intermixed_args`` refuses subcommands.)
    """
    args, rest = parser.parse_known_args(argv)
    if rest and args.command == "run" and not any(arg.startswith("-") for arg in rest):
        args.inputs = [*args.inputs, *rest]
        return args
    return parser.parse_args(argv)  # nothing left over, or argparse's own error for it


def run_options(
    args: argparse.Namespace, app_dests: set[str], command: Sequence[str] = ()
) -> RunOptions:
    """
    The typed options of a parsed ``run`` command.

    Raises:
        ConfigError: an option is missing, malformed or goes without its partner.
    """
    if args.out is None:
        raise ConfigError("--out is required (the JSON-lines output file)")
    if not args.inputs:
        raise ConfigError("give at least one INPUT")
    if args.retry_failed and not args.resume:
        raise ConfigError("--retry-failed goes with --resume")
    if args.overwrite and args.resume:
        raise ConfigError(
            "--overwrite and --resume say opposite things: --resume keeps the output and "
            "finishes the run, --overwrite starts over; give one"
        )
    out = _file_path("--out", str(args.out), "results.jsonl")
    # As typed (a string, as --out is): a Path drops a trailing slash, and ``--journal
    # new/`` was written as a file named ``new``.
    journal = (
        None
        if args.journal is None
        else _file_path("--journal", str(args.journal), "results.jsonl.journal")
    )
    if not journal and (beside := out.with_name(out.name + ".journal")).is_dir():
        raise ConfigError(
            f"the journal's default path, {beside}, is a folder: move it away, or give "
            "--journal FILE"
        )
    limits, default_limit = parse_limits(args.rate_limit)
    return RunOptions(
        inputs=list(args.inputs),
        out=out,
        journal=journal or out.with_name(out.name + ".journal"),
        resume=args.resume,
        retry_failed=args.retry_failed,
        overwrite=args.overwrite,
        ordered=args.ordered is not False,
        workers=parse_workers(args.workers),
        limits=limits,
        default_limit=default_limit,
        progress=args.progress,
        command=tuple(command),
        fail_on_error=args.fail_on_error,
        app_options=argparse.Namespace(**{d: getattr(args, d) for d in sorted(app_dests)}),
        **_executor_options(args),
    )


def _file_path(option: str, text: str, example: str) -> Path:
    """
    ``text`` as the path of a file ``option`` names.

    Raises:
        ConfigError: it names a folder, or ends with a slash as a folder's name does: the
            sink and the journal would fail on it with a traceback, after taking their
            locks beside it (and ``results/`` was written as a file named ``results``).
    """
    path = Path(text)
    slash = text.endswith(("/", os.sep))
    if path.is_dir() or (slash and not path.exists()):
        raise ConfigError(f"{option} {text} is a folder: give a file path, e.g. {path / example}")
    if slash:
        raise ConfigError(
            f"{option} {text} ends with a slash, as a folder's name does, but {path} is a "
            f"file: give its path without the slash"
        )
    return path


def _executor_options(args: argparse.Namespace) -> dict[str, Any]:
    names = parse_names(args.ray_stages)
    if args.executor != "ray" and not args.ray_address:
        if names:
            raise ConfigError("--ray-stages goes with --executor ray or --ray-address")
        return {}
    from ._ray import RayExecutor  # imports no ray until a stage opens it

    return {"executor": RayExecutor(address=args.ray_address), "executor_stages": names}
