"""Config sections: strict msgspec structs, and validation that names every bad key."""

from __future__ import annotations

import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta


class ConfigError(ValueError):
    """The configuration is invalid; the message names every offending key."""


class Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A config section: strict (unknown keys are errors), immutable.

    msgspec, not pydantic: the whole configuration costs ~1.5 MB of the door process instead
    of ~17 MB (docs/BENCHMARKS.md "Face check", memory). The methods are named after the
    msgspec functions they wrap: convert (validate), replace, to_builtins.
    """

    @classmethod
    def convert(cls, data: Any, source: str = "<dict>") -> Any:
        """Validate `data` (a dict as TOML gives it); ConfigError names every bad key."""
        return validate(cls, data, source)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return cls.__struct_fields__

    def replace(self, **changes: Any) -> Any:
        """A copy with some attributes replaced (not validated: msgspec.structs.replace)."""
        return msgspec.structs.replace(self, **changes)

    def to_builtins(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """Plain data under the file's key names ("from", not from_), paths as strings:
        what parse_config() takes back."""
        data = msgspec.to_builtins(self, enc_hook=_encode)
        return _drop_none(data) if exclude_none else data


BcmPin = Annotated[int, Meta(ge=0, le=27)]
# every duration is finite (inf/nan are refused by name, see _collect) and at most 30 days
MAX_SECONDS = 30 * 86400.0
Seconds = Annotated[float, Meta(gt=0, le=MAX_SECONDS)]
Delay = Annotated[float, Meta(ge=0, le=MAX_SECONDS)]  # a duration where 0 means "none"


class SecretRef(Section, frozen=True, kw_only=True):
    """Where a secret lives: an environment variable, or a file (e.g. a systemd credential)."""

    env: str | None = None
    file: Path | None = None

    def __post_init__(self) -> None:
        if self.env and self.file:
            raise ValueError("give either env or file, not both")

    def resolve(self, key: str) -> str | None:
        """The secret's value, or None when no source is configured.

        Raises ConfigError naming `key` when the source is configured but empty or unreadable.
        """
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError(f"{key}: environment variable {self.env} is not set")
            return value
        if self.file:
            try:
                return self.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{key}: cannot read secret file {self.file}: {exc}") from exc
        return None


_FIELD_MARK = "\x00"  # "<mark>key<mark>message": a __post_init__ error about one key


def key_error(key: str, message: str) -> ValueError:
    """An error raised in __post_init__ that names the key it is about."""
    return ValueError(f"{_FIELD_MARK}{key}{_FIELD_MARK}{message}")


# ---- validation: every bad key named at once, in plain words -----------------------------
def _encode(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


def _decode(typ: Any, obj: Any) -> Any:
    if typ is Path:
        if isinstance(obj, str):
            return Path(obj)
        raise ValueError(f"Expected `path`, got `{type(obj).__name__}`")
    raise NotImplementedError


def _drop_none(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _drop_none(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_drop_none(v) for v in data]
    return data


def _section_type(typ: Any) -> type[Section] | None:
    """The section class of a field typed `Section` or `Section | None`, else None."""
    candidates = [typ]
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        candidates = [t for t in typing.get_args(typ) if t is not type(None)]
    for t in candidates:
        if isinstance(t, type) and issubclass(t, Section):
            return t
    return None


_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "array": "a list",
    "object": "a table",
    "null": "absent",
    "path": "a path",
}
_BOUNDS = {
    ">=": "greater than or equal to",
    ">": "greater than",
    "<=": "less than or equal to",
    "<": "less than",
}


def _plain(msg: str, typ: Any) -> str:
    """msgspec's message in the words the README uses."""
    if m := re.fullmatch(r"Expected `(\w+)`, got `(\w+)`", msg):
        want = _TYPE_WORDS.get(m.group(1), m.group(1))
        if _section_type(typ) is SecretRef:
            return (
                'must be a secret reference (SecretRef): { env = "VAR" } or '
                '{ file = "/path" }, never the secret itself'
            )
        return f"must be {want}, not {_TYPE_WORDS.get(m.group(2), m.group(2))}"
    if m := re.fullmatch(r"Expected `(\w+)` (>=|>|<=|<) (\S+)", msg):
        return f"must be {_BOUNDS[m.group(2)]} {m.group(3).removesuffix('.0')}"
    if m := re.fullmatch(r"Expected `(array|str)` of length (>=|<=) (\d+)", msg):
        unit = "item(s)" if m.group(1) == "array" else "character(s)"
        return f"must have {'at least' if m.group(2) == '>=' else 'at most'} {m.group(3)} {unit}"
    if m := re.fullmatch(r"Expected `str` matching regex (.+)", msg):
        return f"must match the pattern {m.group(1)}"
    if msg.startswith("Invalid enum value"):
        allowed = [a for t in [typ] for a in typing.get_args(t) if isinstance(a, str)]
        return f"{msg.removeprefix('Invalid enum value ')} is not allowed; use one of " + ", ".join(
            repr(a) for a in allowed
        )
    if m := re.fullmatch(r"Object contains unknown field `(.+)`", msg):
        return f"unknown key {m.group(1)!r}"
    if m := re.fullmatch(r"Object missing required field `(.+)`", msg):
        return f"required key {m.group(1)!r} is missing"
    return msg


def _split(err: msgspec.ValidationError) -> tuple[str, str]:
    """('Expected ...', '.a.b[0]') from 'Expected ... - at `$.a.b[0]`'."""
    text = str(err)
    msg, sep, where = text.rpartition(" - at `$")
    if not sep:
        return text, ""
    return msg, where.rstrip("`")


def _error_line(path: str, exc: msgspec.ValidationError, typ: Any) -> str:
    msg, where = _split(exc)
    if msg.startswith(_FIELD_MARK):  # raised by key_error: it names its own key
        _, key, msg = msg.split(_FIELD_MARK, 2)
        where += ("" if key.startswith("[") else ".") + key
        typ = None
    return f"  {_key(path, where)}: {_plain(msg, typ)}"


def _key(path: str, suffix: str) -> str:
    return (path + suffix).lstrip(".") or "(top level)"


def _collect(cls: type[Section], data: Any, path: str, errors: list[str]) -> None:
    """Check each key of `data` against section `cls`, recursing into sub-sections, so
    that every bad key is reported, not only the first."""
    if not isinstance(data, dict):
        errors.append(f"  {_key(path, '')}: must be a table, not {type(data).__name__}")
        return
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    for key in data:
        if key not in fields:
            errors.append(f"  {_key(path, '.' + str(key))}: unknown key")
    for name, f in fields.items():
        key = f"{path}.{name}"
        if name not in data:
            if f.required:
                errors.append(f"  {_key(key, '')}: required key is missing")
            continue
        value = data[name]
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(f"  {_key(key, '')}: must be a finite number, got {value}")
            continue
        sub = _section_type(f.type)
        if sub is not None and isinstance(value, dict):
            _collect(sub, value, key, errors)
            continue
        try:
            msgspec.convert(value, f.type, dec_hook=_decode)
        except msgspec.ValidationError as exc:
            errors.append(_error_line(key, exc, f.type))


def validate(cls: type[Any], data: Any, source: str) -> Any:
    errors: list[str] = []
    _collect(cls, data, "", errors)
    if not errors:
        try:
            return msgspec.convert(data, cls, dec_hook=_decode)
        except msgspec.ValidationError as exc:  # a rule in __post_init__
            errors.append(_error_line("", exc, None))
    raise ConfigError("\n".join([f"invalid configuration in {source}:", *errors]))
