"""`deid`: the command line. One module per subcommand, each with `register(subparsers)` that sets a handler
`handler(args, stop) -> int`; adding a subcommand is one module and one line in SUBCOMMANDS.

Exit status, the same for every command (docs/cli.md):
  0        success
  1        a runtime error, printed as one line on stderr: `deid <command>: error: <message>`
  2        a usage error (argparse prints the usage and what was wrong)
  128 + N  stopped by signal N after the output was closed cleanly (130 for Ctrl-C/SIGINT, 143 for SIGTERM)
A handler watches `stop` (a threading.Event set by the first SIGINT/SIGTERM), finishes what it has written and
returns; a second Ctrl-C stops harder (KeyboardInterrupt, still 130).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading

SUBCOMMANDS = (
    "deid_sdk.cli.demo",
    "deid_sdk.cli.run",
    "deid_sdk.cli.bench",
    "deid_sdk.cli.batch",
    "deid_sdk.cli.calibrate",
    "deid_sdk.cli.build_engine",
)

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
# What a handler may raise for bad input or an environment problem: reported as one line. Anything else is a bug
# and keeps its traceback.
RUNTIME_ERRORS = (OSError, ValueError, TypeError, ImportError, RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    from deid_sdk import __version__

    parser = argparse.ArgumentParser(prog="deid", description="De-identify faces in images and video.")
    parser.add_argument("--version", action="version", version=f"deid_sdk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the SDK chooses (backend, kernels)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


class StopOnSignal:
    """First SIGINT/SIGTERM: set `stop` so the command finishes cleanly. A second Ctrl-C: KeyboardInterrupt."""

    def __init__(self):
        self.stop = threading.Event()
        self.signal_number: int | None = None
        self._previous = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number, _frame) -> None:
        if self.signal_number is not None and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_number = number
        self.stop.set()

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _configure_logging(verbose: bool) -> None:
    logger = logging.getLogger("deid_sdk")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("deid: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "check_usage", None) is not None:  # checks across options, argparse's usage error (2)
            args.check_usage(args)
    except SystemExit as exit_request:  # --help / --version (0) or a usage error (2)
        return int(exit_request.code or 0)
    _configure_logging(args.verbose)
    with StopOnSignal() as stopper:
        try:
            status = int(args.handler(args, stopper.stop) or EXIT_OK)
        except KeyboardInterrupt:
            print(f"deid {args.command}: interrupted", file=sys.stderr)
            return 128 + signal.SIGINT
        except RUNTIME_ERRORS as error:
            print(f"deid {args.command}: error: {one_line(error)}", file=sys.stderr)
            return EXIT_ERROR
    if stopper.signal_number is not None:
        name = signal.Signals(stopper.signal_number).name
        print(f"deid {args.command}: stopped by {name}; output closed", file=sys.stderr)
        return 128 + stopper.signal_number
    return status
