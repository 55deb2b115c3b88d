"""`--config run.toml`: a TOML file of run options -> {argparse dest: value} for `parser.set_defaults`.

Options are found by reading the parser's own actions, so every long option works in the file with no
list kept here. Raises ConfigError with one line; never reads argv or exits, never imports the cli package.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
from pathlib import Path
from typing import Union

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from .config import ConfigError

#: options that make no sense inside a config file
FORBIDDEN = frozenset({"help", "version", "config"})
#: the optional table that may hold the options instead of the top level
RUN_TABLE = "run"
_SECRET_PARTS = ("api_key", "password", "secret")
_SHOW_MAX = 60


def load_config_file(path: Union[str, "os.PathLike[str]"], parser: argparse.ArgumentParser) -> dict[str, object]:
    """Read a TOML config file and return {dest: value} ready for `parser.set_defaults(**values)`.

    Called before `parser.parse_args(argv)`, so options given on the command line win. Through
    set_defaults alone an append option (--header) would add the command line's values to the file's
    list; cli.parse_run_args takes those out and lets the command line's list replace the file's.
    Keys are long option names without `--`, dashes or underscores alike (`ramp-up`, `ramp_up`), aliases included
    (`execution-time`), at the top level or in a `[run]` table. Values go through the option's own
    type and choices, so the file is checked exactly like the command line. An empty file gives {}.
    """
    name = os.fspath(path)
    data = _read_toml(name)
    options = _long_options(parser)
    entries = []  # (key as written, how to name it in messages, value)
    for key, value in data.items():
        if key == RUN_TABLE and isinstance(value, dict) and RUN_TABLE not in options:
            entries.extend((k, f"'{k}' in [{RUN_TABLE}]", v) for k, v in value.items())
        else:
            entries.append((key, f"'{key}'", value))
    values: dict[str, object] = {}
    set_by: dict[str, str] = {}  # dest -> label of the key that set it
    for key, label, value in entries:
        normal = key.replace("_", "-")
        if normal in FORBIDDEN:
            raise ConfigError(f"{name}: {label} cannot be set in a config file")
        if normal not in options:
            raise ConfigError(f"{name}: {_unknown(key, label, value, options)}")
        action, option = options[normal]
        if action.dest in set_by:
            raise ConfigError(f"{name}: {set_by[action.dest]} and {label} both set {_primary(action)}")
        set_by[action.dest] = label
        values[action.dest] = _relative_to(Path(name).resolve().parent, action.dest,
                                           _convert(name, label, option, action, value))
    return values


# options naming files the run reads: a relative path in a config file is the config file's, as a
# user who keeps a profile beside its query files expects (outputs stay relative to the current folder)
INPUT_PATHS = ("param_file", "api_key_file", "ssh_key", "known_hosts", "ca_bundle")


def _relative_to(folder: Path, dest: str, value):
    def resolve(text: str) -> str:
        path = Path(text).expanduser()
        return text if path.is_absolute() else str(folder / path)

    if dest in INPUT_PATHS and isinstance(value, str):
        return resolve(value)
    if dest == "extra_body" and isinstance(value, str) and value.startswith("@"):
        return "@" + resolve(value[1:])
    if dest == "dataset" and isinstance(value, list):  # NAME=PATH[:WEIGHT]
        out = []
        for item in value:
            name, sep, rest = str(item).partition("=")
            path, colon, weight = rest.rpartition(":") if ":" in rest and rest.rsplit(":", 1)[1].replace(".", "", 1).isdigit() else (rest, "", "")
            out.append(f"{name}{sep}{resolve(path)}{colon}{weight}" if sep else item)
        return out
    return value


def _read_toml(name: str) -> dict:
    path = Path(name)
    if path.is_dir():
        raise ConfigError(f"{name}: is a folder, not a TOML file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such file") from None
    except PermissionError:
        raise ConfigError(f"{name}: cannot read the file (permission denied)") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")  # a BOM from Windows editors is harmless
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{name}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)"
        message = " ".join(str(exc).split())
        raise ConfigError(f"{name}: not valid TOML: {message}") from None


def _long_options(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.Action, str]]:
    """{'ramp-up': (action, '--ramp-up'), 'execution-time': (duration's action, ...), ...}."""
    options: dict[str, tuple[argparse.Action, str]] = {}
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        for option in action.option_strings:
            if option.startswith("--") and len(option) > 2:
                normal = option[2:].replace("_", "-")
                if normal not in FORBIDDEN:
                    options.setdefault(normal, (action, option))
    return options


def _primary(action: argparse.Action) -> str:
    return next((o for o in action.option_strings if o.startswith("--")), action.option_strings[0])


def _unknown(key: str, label: str, value: object, options: dict) -> str:
    if isinstance(value, dict):
        return f"unknown table {label} (options go at the top level or in a [{RUN_TABLE}] table)"
    match = difflib.get_close_matches(key.replace("_", "-"), sorted(options), n=1, cutoff=0.6)
    hint = f" (did you mean '{match[0]}'?)" if match else ""
    return f"unknown option {label}{hint}"


def _convert(name: str, label: str, option: str, action: argparse.Action, value: object) -> object:
    """The value argparse would store for this option, checked by the option's own type and choices."""
    secret = _is_secret(action)
    if action.dest == "extra_body" and isinstance(value, dict):  # extra-body = {min_tokens = 128, ...}
        import json

        return json.dumps(value, ensure_ascii=False)
    if isinstance(action, (argparse._StoreConstAction, argparse._AppendConstAction)):
        # store_true / store_false / store_const: the flag is given when the value is true
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: {label} must be true or false (got {_show(value, secret)})")
        if isinstance(action, argparse._AppendConstAction):
            return [action.const] if value else action.default
        return action.const if value else action.default
    if isinstance(action, argparse.BooleanOptionalAction):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: {label} must be true or false (got {_show(value, secret)})")
        return (not value) if option.startswith("--no-") else value
    if isinstance(action, argparse._CountAction):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name}: {label} must be a whole number, 0 or more (got {_show(value, secret)})")
        return value
    many = isinstance(action, argparse._AppendAction) or action.nargs in ("+", "*") or (
        isinstance(action.nargs, int) and not isinstance(action.nargs, bool))
    if many:
        # --header A --header B  ==  header = ["A", "B"]; a single value is a list of one
        items = value if isinstance(value, list) else [value]
        return [_convert_one(name, label, action, item, item, secret) for item in items]
    if isinstance(value, list):
        # slo = ["ttft_p95<800ms", "success>=99%"]  ==  --slo 'ttft_p95<800ms,success>=99%'
        if not value:
            raise ConfigError(f"{name}: {label} is an empty list (leave it out instead)")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise ConfigError(f"{name}: {label} must be {_expected(action)} or a list of them "
                                  f"(got {_show(value, secret)})")
        return _convert_one(name, label, action, ",".join(_text(item) for item in value), value, secret)
    return _convert_one(name, label, action, value, value, secret)


def _convert_one(name: str, label: str, action: argparse.Action, value: object, shown: object, secret: bool) -> object:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{name}: {label} must be {_expected(action)} (got {_show(shown, secret)})")
    text = _text(value)
    if action.type is None:
        result: object = text
    else:
        try:
            result = action.type(text)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            raise ConfigError(f"{name}: {_type_problem(label, action, exc, shown, secret)}") from None
    if action.choices is not None and result not in action.choices:
        raise ConfigError(f"{name}: {label} must be {_expected(action)} (got {_show(shown, secret)})")
    return result


def _text(value: object) -> str:
    """The command-line spelling of a TOML scalar: 8 -> '8', 0.5 -> '0.5', nan -> 'nan'."""
    if isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else str(value)


def _type_problem(label: str, action: argparse.Action, exc: Exception, shown: object, secret: bool) -> str:
    # the project's types say "not a whole number: 'x'": reuse their wording as "must be a whole number"
    match = re.match(r"not (an? [^:]+?)\s*:", str(exc))
    if match:
        return f"{label} must be {match.group(1)} (got {_show(shown, secret)})"
    if isinstance(exc, argparse.ArgumentTypeError) and not secret:
        return f"{label}: {' '.join(str(exc).split())}"
    return f"{label} must be {_expected(action)} (got {_show(shown, secret)})"


def _expected(action: argparse.Action) -> str:
    """What the option takes, in words, for messages about a value of the wrong kind."""
    if action.choices is not None:
        return "one of " + ", ".join(str(c) for c in action.choices)
    if action.type is None or action.type is str:
        return "text"
    if action.type is int:
        return "a whole number"
    if action.type is float:
        return "a number"
    try:  # ask the type itself: the project's types answer "not a number: ''"
        action.type("")
    except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
        match = re.match(r"not (an? [^:]+?)\s*:", str(exc))
        if match:
            return match.group(1)
    return "a single value"


def _is_secret(action: argparse.Action) -> bool:
    return any(part in action.dest for part in _SECRET_PARTS)


def _show(value: object, secret: bool = False) -> str:
    """A TOML value for an error message, on one short line; secrets only by their kind."""
    if secret:
        return _kind(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, (int, float)):
        shown = _text(value)
    elif isinstance(value, list):
        shown = "[" + ", ".join(_show(item) for item in value) + "]"
    else:
        return _kind(value)
    return shown if len(shown) <= _SHOW_MAX else shown[: _SHOW_MAX - 3] + "..."


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"
