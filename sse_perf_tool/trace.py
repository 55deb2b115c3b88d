"""`--trace FILE`: a recorded workload to replay, each request at its own moment with its own
lengths. Two formats, as the field publishes them:

- JSONL, one request per line, as Mooncake's traces (FAST'25 release): `timestamp` in
  milliseconds (or `timestamp_s` in seconds), `input_length`, `output_length`, and optional
  `hash_ids`: the prompt's blocks of BLOCK_TOKENS tokens, the same id for the same block (shared
  prefixes).
- CSV with BurstGPT's columns: `Timestamp` (seconds), `Request tokens`, `Response tokens`.

The moments are taken relative to the first request. Reading is bounded (TRACE_MAX lines) and
every problem is one ConfigError naming the line. Imports config (ConfigError) and nothing else.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError

TRACE_MAX = 1_000_000  # requests read from one trace
BLOCK_TOKENS = 512  # Mooncake's hash_ids blocks


@dataclass(frozen=True)
class TraceEntry:
    offset_s: float  # after the trace's first request
    input_length: int
    output_length: int
    hash_ids: tuple = ()


def _length(value, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1 or value != int(value):
        raise ConfigError(f"--trace {where}: {what} must be a whole number of at least 1 (got {value!r})")
    return int(value)


def _jsonl(path: Path) -> list[tuple]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise ConfigError(f"--trace {where}: not JSON ({exc})") from None
            if not isinstance(obj, dict):
                raise ConfigError(f"--trace {where}: not a JSON object")
            if "timestamp_s" in obj:
                at = obj["timestamp_s"]
                scale = 1.0
            elif "timestamp" in obj:
                at, scale = obj["timestamp"], 1000.0  # Mooncake: milliseconds
            else:
                raise ConfigError(f"--trace {where}: no timestamp (milliseconds) or timestamp_s (seconds)")
            if isinstance(at, bool) or not isinstance(at, (int, float)) or at < 0:
                raise ConfigError(f"--trace {where}: the timestamp must be a number of at least 0 (got {at!r})")
            hash_ids = obj.get("hash_ids")
            hash_ids = [] if hash_ids is None else hash_ids
            if not isinstance(hash_ids, list) or not all(isinstance(h, int) for h in hash_ids):
                raise ConfigError(f"--trace {where}: hash_ids must be a list of whole numbers")
            rows.append((at / scale, _length(obj.get("input_length"), "input_length", where),
                         _length(obj.get("output_length"), "output_length", where), tuple(hash_ids)))
            if len(rows) > TRACE_MAX:
                raise ConfigError(f"--trace {path}: more than {TRACE_MAX:,} requests")
    return rows


def _csv(path: Path) -> list[tuple]:
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"Timestamp", "Request tokens", "Response tokens"} - set(reader.fieldnames or ())
        if missing:
            raise ConfigError(f"--trace {path}: a CSV trace needs BurstGPT's columns; missing {', '.join(sorted(missing))}")
        for number, row in enumerate(reader, start=2):
            where = f"{path}, line {number}"
            try:
                at, request, response = float(row["Timestamp"]), float(row["Request tokens"]), float(row["Response tokens"])
            except (TypeError, ValueError):
                raise ConfigError(f"--trace {where}: Timestamp, Request tokens and Response tokens must be numbers") \
                    from None
            if request < 1 or response < 1:  # BurstGPT records failed requests with 0 response tokens: not replayed
                continue
            rows.append((at, _length(request, "Request tokens", where), _length(response, "Response tokens", where), ()))
            if len(rows) > TRACE_MAX:
                raise ConfigError(f"--trace {path}: more than {TRACE_MAX:,} requests")
    return rows


def load_trace(text: str) -> list[TraceEntry]:
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigError(f"--trace: no such file: {path}")
    try:
        rows = _csv(path) if path.suffix.lower() == ".csv" else _jsonl(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--trace: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not rows:
        raise ConfigError(f"--trace {path}: no request in it")
    rows.sort(key=lambda row: row[0])
    first = rows[0][0]
    return [TraceEntry(at - first, n_in, n_out, ids) for at, n_in, n_out, ids in rows]
