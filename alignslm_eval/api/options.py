"""Settings declared once: a dataclass field made with `option()` is a command-line flag, its default, its help, its
check and its entry in the recorded settings.

As TRL's `DPOConfig` fields carry `metadata={"help": ...}`, an `option()` carries the help text (with the default's
source where it has one), the rule its value must meet and how it reads from the command line. `add_options` turns a
dataclass into argparse flags (`--batch-size` for `batch_size`), `from_namespace` builds the dataclass back from the
parsed flags, and every `Options` checks its values when it is made, so a library user who builds one directly gets
the same one-line errors as the command line. `recorded` is what results files and config.json store.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar, Union

from alignslm_eval.io.errors import UserError

T = TypeVar("T", bound="Options")


def option(default: Any = dataclasses.MISSING, *, help: str, must: Optional[tuple[Callable[[Any], bool], str]] = None,
           flag: Optional[str] = None, choices: Optional[tuple[str, ...]] = None, metavar: Optional[str] = None,
           default_factory: Any = dataclasses.MISSING, record: bool = True,
           parse: Optional[Callable[[str], Any]] = None, **extra: Any) -> Any:
    """A dataclass field that is also a flag. `must=(rule, "at least 1")`: values failing `rule` are refused with
    `--flag VALUE: must be at least 1` (None, the "not given" of an optional setting, is never checked). `parse` reads
    a flag's text into the value, raising UserError for a bad one. `extra`
    metadata is for the dataclass's own use (e.g. which config.json section a training setting belongs to)."""
    metadata = {"help": help, "must": must, "flag": flag, "choices": choices, "metavar": metavar, "record": record,
                "parse": parse, **extra}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def option_fields(cls: Any) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata]


@dataclasses.dataclass
class Options:
    """Base of the settings dataclasses: values are checked when made."""

    def __post_init__(self) -> None:
        for f in option_fields(self):
            rule = f.metadata.get("must")
            value = getattr(self, f.name)
            # `not rule(...)` also refuses nan, which fails every comparison
            if rule is not None and value is not None and not rule[0](value):
                raise UserError(f"{flag_of(f)} {value}: must be {rule[1]}")
            choices = f.metadata.get("choices")
            if choices and value is not None and value not in choices:
                raise UserError(f"{flag_of(f)} {value}: must be one of {', '.join(choices)}")

    def recorded(self) -> dict[str, Any]:
        """The settings as JSON values, under their field names (paths as strings)."""
        return {f.name: json_value(getattr(self, f.name)) for f in option_fields(self) if f.metadata["record"]}


def json_value(value: Any) -> Any:
    """`value` as JSON holds it: paths as strings, tuples as lists, mapping keys as strings."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return value


def _unwrap_optional(kind: Any) -> Any:
    if typing.get_origin(kind) is Union:
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return kind


def add_options(parser: Union[argparse.ArgumentParser, argparse._ArgumentGroup], cls: Any,
                skip: tuple[str, ...] = ()) -> None:
    """A flag for each `option()` field of `cls` (but those in `skip`). bool fields are switches; list fields are
    flags given once per value; a field without a default is a required flag."""
    hints = typing.get_type_hints(cls)
    for f in option_fields(cls):
        if f.name in skip:
            continue
        kind = _unwrap_optional(hints[f.name])
        kwargs: dict[str, Any] = {"dest": f.name, "help": f.metadata["help"]}
        if f.metadata.get("metavar") or f.metadata.get("flag"):
            kwargs["metavar"] = f.metadata.get("metavar") or flag_of(f).lstrip("-").replace("-", "_").upper()
        if f.metadata.get("choices"):
            kwargs["choices"] = list(f.metadata["choices"])
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.metadata.get("parse"):
            # a value with its own text form (e.g. 3:1,4:2); a default_factory's value is filled in by from_namespace
            kwargs.update(type=f.metadata["parse"], default=None if f.default is dataclasses.MISSING else f.default)
        elif kind is bool:
            kwargs["action"] = "store_true"
        elif typing.get_origin(kind) is list:
            kwargs.update(action="append", type=typing.get_args(kind)[0], default=None)
        else:
            kwargs["type"] = kind
            if not required:
                kwargs["default"] = f.default
        if required:
            kwargs["required"] = True
        elif kind is not bool and f.default not in (None, "", dataclasses.MISSING):
            kwargs["help"] += f" (default: {f.default})"
        parser.add_argument(flag_of(f), **kwargs)


def from_namespace(cls: type[T], args: argparse.Namespace, **values: Any) -> T:
    """`cls` from parsed flags (a list flag given no time takes the field's default); `values` set the others."""
    for f in option_fields(cls):
        if f.name in values or not hasattr(args, f.name):
            continue
        value = getattr(args, f.name)
        if value is None and f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        values[f.name] = value
    return cls(**values)
