"""The command-line machinery behind `cosmos_sim.cli`: a table of commands becomes argparse subparsers,
and user errors become one line on stderr.

A `Command` row declares its flags: one by one (`flag`), or generated from a config dataclass
(`config_flags`, see `cosmos_sim.config.add_args`) so `--help` shows the config's own defaults.
User errors (unknown names, bad values, missing files: the package's `CosmosSimError`s) print one line,
`cosmos-sim: error: ...`, on stderr and exit with status 1 (2 for command-line syntax errors, 130 for
Ctrl-C); any other exception is a bug and shows its traceback. Set COSMOS_SIM_DEBUG=1 to get the
traceback of a user error too.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cosmos_sim.config import add_args, from_args
from cosmos_sim.errors import InputError

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


def _dests(names, flag_dests: bool) -> dict[str, str]:
    """Config field -> its flag's dest: the field's name, or with `flag_dests` the flag's own (as argparse
    names it: "--state-steps" -> state_steps) where `names` gives the field a flag of its own."""
    given = dict(names) if isinstance(names, Mapping) else {n: () for n in names}
    flags = {n: (f if isinstance(f, str) else next(iter(f), None)) for n, f in given.items()}
    return {n: f.lstrip("-").replace("-", "_") if flag_dests and f else n for n, f in flags.items()}


class _Dests:
    """A parser whose arguments land in other dests (see `config_flags`)."""

    def __init__(self, parser: argparse.ArgumentParser, dests: dict[str, str]):
        self.parser, self.dests = parser, dests

    def add_argument(self, *opts, dest: str, **kw):
        return self.parser.add_argument(*opts, dest=self.dests[dest], **kw)


def config_flags(target: str, names, *, flag_dests: bool = False, **kw) -> AddArgs:
    """Flags generated from the config dataclass `target` (see `cosmos_sim.config.add_args`). `flag_dests`:
    a field given a flag of its own ({"steps": "--state-steps"}) is parsed into that flag's dest, so configs
    with like-named fields share one command (read them back with `config_from(..., flag_dests=True)`)."""
    return lambda p: add_args(_Dests(p, _dests(names, flag_dests)), _config_class(target), names, **kw)


def config_from(target: str, args: argparse.Namespace, names, *, flag_dests: bool = False, **extra):
    """The config `target` the parsed flags describe."""
    dests = _dests(names, flag_dests)
    values = argparse.Namespace(**{n: getattr(args, d) for n, d in dests.items()})
    return from_args(_config_class(target), values, dests, **extra)


def printing(target: str, *names: str) -> Callable[[argparse.Namespace], None]:
    """A command that prints what `"module:function"` returns, called with these parsed args in this order."""
    def command(args: argparse.Namespace) -> None:
        module, fn = target.split(":")
        print(getattr(importlib.import_module(module), fn)(*(getattr(args, n) for n in names)))

    return command


OBJECT_ENTRIES = flag("--object-entries", default=None, metavar="A:B", help="with --env: the state entries of an "
                      "object the open-loop policy moves (e.g. 4:7): its displacement at 50 and 150 steps, env vs twin")
NO_PROGRESS = flag("--no-progress", action="store_true", help="hide progress bars")
DEVICE = flag("--device", default=None, help="cpu or cuda (default: cuda when available)")
ENV_FLAGS = (flag("--env", default=None, metavar="ID", help="a Gymnasium env id instead of --world (e.g. "
                   "Reacher-v5): its learned twin is gym.make('cosmos_sim/Learned-v0', model=RUN)"),
             flag("--env-kwargs", default=None, metavar="JSON", help="with --env: keyword arguments of gym.make, "
                  "as a JSON object"))
COMPARE_ENV_FLAGS = (*ENV_FLAGS, OBJECT_ENTRIES)  # compare's --env flags: also the object whose motion it compares


def check_device(device: str | None) -> None:
    """A bad or unavailable --device fails here, before any work (see `cosmos_sim.device.resolve_device`)."""
    from cosmos_sim.device import resolve_device

    resolve_device(device)


def env_world(args: argparse.Namespace) -> str | None:
    """--env ID [--env-kwargs JSON] -> the env's world name ("env:ID..."), checked; None without --env."""
    if args.env is None:
        if args.env_kwargs is not None:
            raise InputError("--env-kwargs needs --env ID")
        return None
    from cosmos_sim.envs.source_env import canonical_kwargs, env_world

    return env_world(args.env, json.loads(canonical_kwargs(args.env_kwargs))).name


@dataclass(frozen=True)
class Command:
    """One subcommand: `help` is its line in `cosmos-sim --help`; `description` its own --help text. `needs`:
    flags ("--data DIR") the command needs when run itself (argparse cannot require them of a command with
    subcommands: a subcommand's arguments are not its group's)."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int | None] | None = None
    args: tuple[AddArgs, ...] = ()
    description: str | None = None
    subcommands: tuple[Command, ...] = ()
    needs: tuple[str, ...] = ()

    def check_needs(self, args: argparse.Namespace) -> None:
        """An InputError naming the flags in `needs` (and the subcommands) when one is missing."""
        if any(not getattr(args, n.split()[0].lstrip("-").replace("-", "_")) for n in self.needs):
            subs = f" (or a subcommand: {self.name} {'|'.join(c.name for c in self.subcommands)})"
            raise InputError(f"{self.name} needs {' and '.join(self.needs)}{subs if self.subcommands else ''}")


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
        p.set_defaults(_run=c.run, _parser=p, _command=c)


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    from cosmos_sim.version import __version__

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
        args._command.check_needs(args)
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
