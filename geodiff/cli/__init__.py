"""The ``geodiff`` command line: one module per sub-command, each with a ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from geodiff.errors import GeodiffError

COMMANDS = ("train", "sample", "info", "demo", "variogram", "evaluate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geodiff", description="Diffusion models for synthetic radar and InSAR scenes."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"geodiff.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        # Warnings reach the user as one line each, like errors, not in Python's two-line form.
        warnings.showwarning = lambda message, *_: print(f"geodiff {args.command}: warning: {message}",
                                                          file=sys.stderr)
        try:
            return args.func(args) or 0
        except (GeodiffError, OSError) as err:
            print(f"geodiff {args.command}: error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"geodiff {args.command}: interrupted", file=sys.stderr)
            return 130
