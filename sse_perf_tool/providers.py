"""Workload sources shared by all threads: QueryProvider and ApiKeyProvider (thread-safe round-robin).

Files are read and checked once, up front; a bad file raises ConfigError before anything is sent.
Imports only config and flavors.base (Query).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Optional, Sequence

from .config import ConfigError
from .flavors.base import Query


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


def _read_text(path: str, what: str) -> str:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{what} not found: {path}")
    if p.is_dir():
        raise ConfigError(f"{what} is a folder, not a file: {path}")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} cannot be read: {path} ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text: {path} (byte {exc.start})") from None


def load_queries(path: str) -> list[Query]:
    """`.jsonl`: objects with `query` and optional `inputs`, `dataset`, `max_tokens`.
    Anything else: one query per line, blank lines skipped."""
    text = _read_text(path, "--param-file")
    queries: list[Query] = []
    if path.lower().endswith(".jsonl"):
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            queries.append(_parse_jsonl_query(line, path, lineno))
    else:
        queries = [Query(text=line.strip()) for line in text.splitlines() if line.strip()]
    if not queries:
        raise ConfigError(f"--param-file has no queries: {path}")
    return queries


def _parse_jsonl_query(line: str, path: str, lineno: int) -> Query:
    where = f"--param-file {path} line {lineno}"
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
    keys = [normalise_api_key(line) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    keys = [k for k in keys if k]
    if not keys:
        raise ConfigError(f"--api-key-file has no keys: {path}")
    return keys


class QueryProvider(_RoundRobin):
    """Hands out queries in file order, cycling; safe to share between threads."""

    @classmethod
    def from_config(cls, param_file: Optional[str], query: str) -> "QueryProvider":
        if param_file:
            return cls(load_queries(param_file))
        if not query.strip():
            raise ConfigError("--query must not be empty")
        return cls([Query(text=query)])


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
