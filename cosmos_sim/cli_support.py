"""The command-line machinery behind `cosmos_sim.cli`: a table of commands becomes argparse subparsers,
and user errors become one line on stderr.

A `Command` row declares its flags: one by one (`flag`), or generated from a config dataclass
(`config_flags`, see `cosmos_sim.config.add_args`) so `--help` shows the config's own defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cosmos_sim.config import add_args, from_args

PROG = "cosmos-sim"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
AddArgs = Callable[[argparse.ArgumentParser], None]


def flag(*opts: str, **kw) -> AddArgs:
    """One argparse argument of a command's row."""
    return lambda p: p.add_argument(*opts, **kw)


def _config_class(target: str) -> type:
    """`"module:Class"`, imported when needed (so a command's config module loads with its parser)."""
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def config_flags(target: str, names, **kw) -> AddArgs:
    """Flags generated from the config dataclass `target` (see `cosmos_sim.config.add_args`)."""
    return lambda p: add_args(p, _config_class(target), names, **kw)


def config_from(target: str, args: argparse.Namespace, names, **extra):
    """The config `target` the parsed flags describe."""
    return from_args(_config_class(target), args, names, **extra)


NO_PROGRESS = flag("--no-progress", action="store_true", help="hide progress bars")


@dataclass(frozen=True)
class Command:
    """One subcommand: `help` is its line in `cosmos-sim --help`; `description` its own --help text."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int | None] | None = None
    args: tuple[AddArgs, ...] = ()
    description: str | None = None
    subcommands: tuple[Command, ...] = ()


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line naming the command's --help, instead of usage + error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def _add_commands(parent: argparse.ArgumentParser, commands: Sequence[Command]) -> None:
    sub = parent.add_subparsers(title="commands", metavar="COMMAND", dest=f"_cmd_{parent.prog}")
    for c in commands:
        # No abbreviations: a group's own options must not swallow its subcommands' longer ones.
        # help is %-formatted in the command list (so "95%%" there), a description is printed as it is
        p = sub.add_parser(c.name, help=c.help, description=c.description or c.help.replace("%%", "%"),
                           allow_abbrev=False,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        for add in c.args:
            add(p)
        if c.subcommands:
            _add_commands(p, c.subcommands)
        p.set_defaults(_run=c.run, _parser=p)


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    from cosmos_sim import __version__

    p = _Parser(prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
                description="cosmos_sim: learned world models as Gymnasium envs, beside MuJoCo and PyBullet twins.\n"
                            "Run 'cosmos-sim COMMAND --help' for what a command does.")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_commands(p, commands)
    p.set_defaults(_run=None, _parser=p)
    return p


def _message(e: BaseException) -> str:
    return str(e) or type(e).__name__


TRACK = flag("--track", nargs="?", const="cosmos_sim", default=None, metavar="PROJECT",
             help="also send the run's TensorBoard logs to Weights & Biases, project PROJECT (default: cosmos_sim; "
                  "pip install 'cosmos_sim[wandb]')")


def _tracking(args: argparse.Namespace):
    """The W&B run of a command given --track (see `training.events.tracking`), else nothing."""
    project = getattr(args, "track", None)
    if project is None:
        return contextlib.nullcontext()
    from cosmos_sim.training.events import tracking

    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
              if not k.startswith("_") and isinstance(v, (str, int, float, bool, Path, type(None)))}
    if getattr(args, "out", None) is not None:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    return tracking(project, getattr(args, "out", None), config)


def run(commands: Sequence[Command], argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the chosen command; the exit status (one-line errors, see `cosmos_sim.cli`)."""
    from cosmos_sim.errors import CosmosSimError

    parser = build_parser(commands)
    args = parser.parse_args(argv)
    if args._run is None:  # `cosmos-sim` or a command group without its subcommand
        args._parser.print_help()
        return EXIT_OK if args._parser is parser else EXIT_USAGE
    try:
        with _tracking(args):
            return int(args._run(args) or EXIT_OK)
    except CosmosSimError as e:  # the package's own user errors; anything else is a bug: its traceback shows
        if os.environ.get("COSMOS_SIM_DEBUG"):
            raise
        print(f"{PROG}: error: {_message(e)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as e:
        print(f"{PROG}: error: {e or 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `cosmos-sim worlds | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
