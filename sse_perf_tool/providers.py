"""Workload sources shared by all threads: QueryProvider, WeightedQueryProvider (--dataset) and
ApiKeyProvider. All are thread-safe; files are read and checked once, up front, so a bad file
raises ConfigError before anything is sent. Imports only config and query.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import random
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

from .config import ConfigError
from .query import Query


class _RoundRobin:
    def __init__(self, items: Sequence):
        if not items:
            raise ValueError("round-robin over nothing")
        self._items = tuple(items)
        self._next = 0
        self._lock = threading.Lock()

    def next(self):
        with self._lock:
            item = self._items[self._next]
            self._next = (self._next + 1) % len(self._items)
        return item

    def __len__(self) -> int:
        return len(self._items)

    def first(self):
        """The first item, without moving the turn on."""
        return self._items[0]

    def all(self) -> tuple:
        """Every item, in order (for checks before the run)."""
        return self._items


def _lines(text: str) -> list[str]:
    """Lines split at LF (CRLF's CR dropped) only: str.splitlines() also splits at U+2028, U+2029,
    U+0085 and other characters that are text inside a JSON string or a prompt."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


INPUT_LIMIT_BYTES = 256 * 2**20  # a query or key file is read whole: at most this much


def _read_text(path: str, what: str) -> str:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{what} not found: {path}")
    if p.is_dir():
        raise ConfigError(f"{what} is a folder, not a file: {path}")
    try:
        with p.open("rb") as handle:  # bounded: /dev/zero or a pipe would otherwise fill the memory
            raw = handle.read(INPUT_LIMIT_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{what} cannot be read: {path} ({exc.strerror or exc})") from None
    if len(raw) > INPUT_LIMIT_BYTES:
        raise ConfigError(f"{what} is larger than {INPUT_LIMIT_BYTES // 2**20} MiB: {path} (split it, or use "
                          "--dataset with several files)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text: {path} (byte {exc.start})") from None


def load_queries(path: str, what: str = "--param-file") -> list[Query]:
    """`.jsonl`: objects with `query` and optional `inputs`, `dataset`, `max_tokens`.
    Anything else: one query per line, blank lines skipped. `what` names the option in
    error messages (`--param-file`, `--dataset maths`)."""
    text = _read_text(path, what)
    queries: list[Query] = []
    if path.lower().endswith(".jsonl"):
        for lineno, line in enumerate(_lines(text), 1):
            if not line.strip():
                continue
            queries.append(_parse_jsonl_query(line, f"{what} {path} line {lineno}"))
    else:
        queries = [Query(text=line.strip()) for line in _lines(text) if line.strip()]
    if not queries:
        raise ConfigError(f"{what} has no queries: {path}")
    return queries


def _parse_jsonl_query(line: str, where: str) -> Query:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: invalid JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: expected a JSON object")
    query = obj.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ConfigError(f"{where}: needs a non-empty string field \"query\"")
    inputs = obj.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise ConfigError(f"{where}: \"inputs\" must be an object")
    dataset = obj.get("dataset")
    if dataset is not None and not isinstance(dataset, str):
        raise ConfigError(f"{where}: \"dataset\" must be a string")
    max_tokens = obj.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ConfigError(f"{where}: \"max_tokens\" must be a positive integer")
    return Query(text=query, inputs=inputs, dataset=dataset, max_tokens=max_tokens)


def load_api_keys(path: str) -> list[str]:
    """One key per line; blank lines and lines starting with '#' skipped; 'Bearer ' stripped."""
    from .config import normalise_api_key

    text = _read_text(path, "--api-key-file")
    keys = [normalise_api_key(line) for line in _lines(text) if line.strip() and not line.lstrip().startswith("#")]
    keys = [k for k in keys if k]
    if not keys:
        raise ConfigError(f"--api-key-file has no keys: {path}")
    return keys


class QueryProvider(_RoundRobin):
    """Hands out queries in file order, cycling; safe to share between threads."""

    @classmethod
    def from_config(cls, param_file: Optional[str], query: Optional[str]) -> "QueryProvider":
        if param_file:
            return cls(load_queries(param_file))
        if not (query or "").strip():
            raise ConfigError("--query must not be empty")
        return cls([Query(text=query)])


# Dataset names end up in records, summary keys and report headings: keep them to ASCII
# letters, digits, '.', '_', '-' and CJK letters (ideographs, kana, hangul).
_NAME_RE = re.compile(
    r"[A-Za-z0-9._\-"
    r"\u3040-\u30ff"  # hiragana, katakana
    r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs (ext. A, unified, compatibility)
    r"\uac00-\ud7af"  # hangul syllables
    r"\U00020000-\U0003134f"  # CJK ideographs, extensions B..G
    r"]+"
)
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NON_FINITE_RE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


@dataclass(frozen=True)
class DatasetSpec:
    """One `--dataset NAME=PATH[:WEIGHT]`: the share of requests drawn from PATH is
    weight / sum of all weights."""

    name: str
    path: str
    weight: float = 1.0


def parse_dataset_spec(text: str) -> DatasetSpec:
    """`NAME=PATH[:WEIGHT]`. The weight is the part after the last ':' only when it reads as a
    number, so `C:\\data\\x.txt` or `a:b.txt` with no weight keep their colons. Pure."""
    where = f"--dataset {text!r}"
    name, eq, rest = text.partition("=")
    if not eq:
        raise ConfigError(f"{where}: expected NAME=PATH[:WEIGHT] (no '=')")
    if not name:
        raise ConfigError(f"{where}: the dataset name before '=' is empty")
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(
            f"{where}: dataset name {name!r} may hold only letters, digits, '.', '_', '-' and CJK characters"
        )
    path, weight = rest, 1.0
    head, colon, tail = rest.rpartition(":")
    if colon:
        candidate = tail.strip()
        if not candidate:
            raise ConfigError(f"{where}: the weight after the last ':' is empty")
        if _NON_FINITE_RE.fullmatch(candidate):
            raise ConfigError(f"{where}: weight must be a finite number, not {candidate}")
        if _NUMBER_RE.fullmatch(candidate):
            path, weight = head, float(candidate)
            if not math.isfinite(weight):  # e.g. 1e999
                raise ConfigError(f"{where}: weight must be a finite number, not {candidate}")
            if weight <= 0:
                raise ConfigError(f"{where}: weight must be greater than 0, not {candidate}")
    if not path:
        raise ConfigError(f"{where}: the path after '=' is empty")
    return DatasetSpec(name=name, path=path, weight=weight)


class WeightedQueryProvider:
    """Draws a dataset at random in proportion to its weight (seeded, so a run can be
    repeated), then hands out that dataset's next query in file order, cycling. Each query
    comes back with `dataset` set to its dataset's name. Safe to share between threads;
    same `next()` as QueryProvider."""

    def __init__(self, datasets: Iterable[tuple[str, float, Sequence[Query]]], seed: Optional[int] = None):
        names: list[str] = []
        weights: list[float] = []
        queries: list[tuple[Query, ...]] = []
        for name, weight, items in datasets:
            if name in names:
                raise ConfigError(f"--dataset {name} is given more than once")
            if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0):
                raise ConfigError(f"--dataset {name}: weight must be a finite number greater than 0, not {weight}")
            if not items:
                raise ConfigError(f"--dataset {name} has no queries")
            names.append(name)
            weights.append(float(weight))
            # Labelled once here, not per draw; inputs and max_tokens from a JSONL line are kept.
            queries.append(tuple(dataclasses.replace(q, dataset=name) for q in items))
        if not names:
            raise ConfigError("no --dataset given")
        self._names = tuple(names)
        self._weights = tuple(weights)
        self._queries = tuple(queries)
        self._cum: list[float] = []
        total = 0.0
        for w in weights:
            total += w
            self._cum.append(total)
        self._total = total
        self._next = [0] * len(names)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    @classmethod
    def from_specs(cls, specs: Sequence[DatasetSpec], seed: Optional[int] = None) -> "WeightedQueryProvider":
        """Reads every file (text or JSONL by extension) up front; errors name `--dataset NAME`."""
        seen: set[str] = set()
        for spec in specs:
            if spec.name in seen:
                raise ConfigError(f"--dataset {spec.name} is given more than once")
            seen.add(spec.name)
        return cls(
            [(s.name, s.weight, load_queries(s.path, f"--dataset {s.name}")) for s in specs],
            seed=seed,
        )

    @property
    def datasets(self) -> tuple[tuple[str, float, int], ...]:
        """(name, weight, query count) per dataset, in the order given."""
        return tuple(zip(self._names, self._weights, (len(q) for q in self._queries)))

    def all(self) -> tuple:
        """Every query of every dataset (for checks before the run)."""
        return tuple(q for queries in self._queries for q in queries)

    def next(self) -> Query:
        with self._lock:
            # min(): guards the float edge where random() * total rounds up to total itself.
            i = min(bisect.bisect_right(self._cum, self._rng.random() * self._total), len(self._cum) - 1)
            items = self._queries[i]
            query = items[self._next[i]]
            self._next[i] = (self._next[i] + 1) % len(items)
        return query


class ApiKeyProvider(_RoundRobin):
    """Hands out API keys in turn, one per request; safe to share between threads."""

    @classmethod
    def from_config(cls, api_key_file: Optional[str], api_key: Optional[str]) -> Optional["ApiKeyProvider"]:
        if api_key_file:
            return cls(load_api_keys(api_key_file))
        if api_key:
            from .config import normalise_api_key

            key = normalise_api_key(api_key)
            if not key:
                raise ConfigError("--api-key is empty")
            return cls([key])
        return None
