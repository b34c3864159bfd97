"""Config dataclasses as command-line flags, so every default has one source.

A field declared with `arg(default, "help")` documents itself; `add_args` turns the chosen fields
of a config into `--field-name` flags with the dataclass's type, default and help, and `from_args`
builds the config back from the parsed flags. Booleans get `--flag/--no-flag`; `tuple[float,
float]` takes `LO:HI` (or one number); `tuple[str, ...]` takes a comma-separated list.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any


def arg(default: Any, help: str, flag: tuple[str, float] | None = None, parse: Any = None) -> Any:
    """A dataclass field with its help text (shown by `--help` where the field is a flag).

    `flag=("--minutes", 60.0)`: on the command line the field is that flag, in units `scale` times the
    field's (the config keeps seconds; people type minutes). `parse`: the flag's own argparse type (e.g.
    `positive_int`, so a bad value is a usage error) instead of the one the annotation gives.
    """
    return dataclasses.field(default=default, metadata={"help": help, "flag": flag, "parse": parse})


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def number_range(text: str) -> tuple[float, float]:
    """`0.7` or `0.3:1.0`."""
    try:
        parts = [float(v) for v in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or LO:HI, got {text!r}") from None
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected a number or LO:HI, got {text!r}")
    return (parts[0], parts[-1])


def name_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _parser_for(tp: Any) -> Any:
    """The argparse type for a field's annotation (`X | None` parses as X)."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if typing.get_origin(tp) is tuple:
        return name_list if typing.get_args(tp)[-1] is Ellipsis else number_range
    return {int: int, float: float, str: str, bool: bool}[tp]


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if all(isinstance(v, str) for v in value) else ":".join(map(str, value))
    return "none" if value is None else str(value)


def add_args(parser: argparse.ArgumentParser, cls: type, names: Iterable[str] | Mapping[str, str | tuple[str, ...]],
             *, required: Iterable[str] = ()) -> None:
    """Flags for the fields `names` of dataclass `cls` (a mapping gives a field its own flag or flags);
    `required` fields have no default."""
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    flags = dict(names) if isinstance(names, Mapping) else {n: () for n in names}
    for name, given in flags.items():
        f = by_name[name]
        kind, shown = f.metadata.get("parse") or _parser_for(hints[name]), _show(f.default)
        opts = ((given,) if isinstance(given, str) else tuple(given)) or ("--" + name.replace("_", "-"),)
        if f.metadata.get("flag"):  # a flag in other units: parsed into the field's own
            (flag, scale), unit = f.metadata["flag"], kind
            opts, kind, shown = (flag, *opts[1:]), (lambda text, s=scale, k=unit: k(text) * s), f"{f.default / scale:g}"
        kw: dict[str, Any] = {"dest": name, "help": f.metadata.get("help", "")}
        if name in required:
            kw["required"] = True
        else:
            kw |= {"default": f.default, "help": f"{kw['help']} (default: {shown})"}
        if kind is bool:
            parser.add_argument(*opts, action=argparse.BooleanOptionalAction, **kw)
        else:
            metavar = {number_range: "LO:HI", name_list: "A,B,..."}.get(kind)
            parser.add_argument(*opts, type=kind, metavar=metavar or opts[0].lstrip("-").upper().replace("-", "_"),
                                **kw)


def from_args(cls: type, args: argparse.Namespace, names: Iterable[str], **extra: Any) -> Any:
    """`cls(**{name: args.name for name in names} | extra)`: the config the flags describe (`extra` wins)."""
    return cls(**({n: getattr(args, n) for n in names} | extra))
