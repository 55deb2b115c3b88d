"""Run history: every run in one SQLite database (standard-library sqlite3), written as it goes.

Imports records (field names), the metric registry (the figures kept as columns) and storage
(run folders) only. WAL mode and a busy timeout let several runs write the same
file at once; rows are written in batches, so a killed run keeps what had finished. Every failure
(corrupt file, lock held too long, a schema newer than this program) is a HistoryError: the caller
warns and carries on without history, never failing the run for it.

A run's row says `running` until it finishes. One whose process is gone (killed, crashed) is shown
as `killed`, computed when read (the database is not rewritten): on this machine its pid no longer
exists, or on any machine it has not written its heartbeat (every HEARTBEAT_S while it runs) for
STALE_S.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Optional

from . import metrics as registry
from .records import RECORD_FIELDS

SCHEMA_VERSION = 2
BUSY_TIMEOUT_S = 10.0
HEARTBEAT_S = 10.0  # a running run's row says it is alive this often ...
STALE_S = 120.0  # ... and reads as `killed` when it has not for this long (a wide margin for clock skew)
KILLED = "killed"


def status_of(summary: dict) -> str:
    """A finished run's status: killed (a summary rebuilt from records.jsonl: the run did not
    finish), interrupted (Ctrl-C, or stopped early), failed (every request failed: nothing was
    measured), else completed."""
    run = summary.get("run") or {}
    requests = summary.get("requests") or {}
    if run.get("incomplete"):
        return KILLED
    if run.get("interrupted"):
        return "interrupted"
    if requests.get("total") and not requests.get("ok"):
        return "failed"
    if run.get("stopped_early"):
        return "interrupted"
    return "completed"

# The main figures kept as columns (for listing and filtering without parsing JSON):
# column -> path in summary.json
FIGURES = {  # from the metric registry: the whole-run figures, then each distribution's kept stats
    **{f.history: f.path for f in registry.FIGURES if f.history},
    **{m.stat_name(stat): (m.field, stat) for m, stat in registry.stat_columns("history")},
}
_REQUEST_COLUMNS = tuple(RECORD_FIELDS)
_JSON_COLUMNS = ("itl_ms",)


class HistoryError(Exception):
    """The history database cannot be used (one line, for a warning)."""


# A new database's request columns are every record field; an older database gains the fields
# added since as columns when it is opened (History._add_missing_columns), so a new record field
# needs no change here and no migration.
_V1_REQUEST_COLUMNS = _REQUEST_COLUMNS


def _v1(db: sqlite3.Connection) -> None:
    figures = ", ".join(f"{name} REAL" for name in FIGURES)
    db.execute(f"""CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at REAL NOT NULL, ended_at REAL, status TEXT NOT NULL,
        model_name TEXT, api TEXT, base_url TEXT, load_model TEXT, threads INTEGER, rate REAL,
        run_dir TEXT, options_json TEXT, summary_json TEXT, slo_json TEXT, {figures})""")
    columns = ", ".join(_V1_REQUEST_COLUMNS)
    db.execute(f"CREATE TABLE requests (run_id INTEGER NOT NULL REFERENCES runs(id), {columns})")
    db.execute("CREATE INDEX requests_by_run ON requests(run_id, request_id)")


def _v2(db: sqlite3.Connection) -> None:
    """Schema 2: the per-second time series (for comparisons) and the writer's process, so a
    run whose process died without finishing can be told apart from one still running."""
    db.execute("CREATE TABLE seconds (run_id INTEGER NOT NULL REFERENCES runs(id), second INTEGER NOT NULL, "
               "row_json TEXT NOT NULL, PRIMARY KEY (run_id, second))")
    db.execute("ALTER TABLE runs ADD COLUMN pid INTEGER")
    db.execute("ALTER TABLE runs ADD COLUMN host TEXT")


MIGRATIONS = {1: _v1, 2: _v2}  # version -> step from version - 1
TARGETS_TABLE = ("CREATE TABLE IF NOT EXISTS targets (name TEXT PRIMARY KEY, base_url TEXT NOT NULL, api TEXT, "
                 "model TEXT, key_file TEXT, key_env TEXT, headers_json TEXT, saved_at REAL)")


def _get(summary: dict, path: tuple):
    value = summary
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class History:
    """One connection to the history database. Not shared between threads at the same time; the
    run's aggregator thread writes records, the main thread opens and finishes the run."""

    def __init__(self, path: str, timeout_s: float = BUSY_TIMEOUT_S):
        self.path = str(path)
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=timeout_s, check_same_thread=False, isolation_level=None)
            self.db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            self._use_wal(timeout_s)
            self.db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
            self._add_missing_columns()
            self._add_heartbeat_column()
            self._add_targets_table()
        except (sqlite3.DatabaseError, HistoryError, OSError) as exc:
            db = getattr(self, "db", None)
            if db is not None:
                db.close()
            if isinstance(exc, HistoryError):
                raise
            if isinstance(exc, OSError):
                raise HistoryError(f"history database {self.path} cannot be opened: {exc.strerror or exc}") from None
            raise HistoryError(self._describe(exc)) from None

    def _use_wal(self, timeout_s: float) -> None:
        """Write-ahead logging (readers do not block the run's writer). Two connections switching a
        new database to it at the same instant (two runs started together) get "database is
        locked" at once, without the busy timeout's wait; asked again every 20 ms up to that timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if not ("locked" in str(exc) or "busy" in str(exc)) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.02)

    def _describe(self, exc: Exception) -> str:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return f"history database {self.path} is corrupt ({text}); move it away to start a new one"
        if "locked" in text or "busy" in text:
            return f"history database {self.path} is locked by another program ({text})"
        return f"history database {self.path}: {text}"

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryError(f"history database {self.path} has schema {version}, newer than this sse-perf "
                               f"understands ({SCHEMA_VERSION}); upgrade sse-perf or use --history elsewhere")
        if version == SCHEMA_VERSION:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](self.db)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    @contextmanager
    def _transaction(self):
        """BEGIN IMMEDIATE ... COMMIT: one writer at a time, waiting up to the busy timeout."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise HistoryError(self._describe(exc)) from None

    def _add_missing_columns(self) -> None:
        """Record fields newer than the database's requests table become columns (NULL in old rows)."""
        have = {row[1] for row in self.db.execute("PRAGMA table_info(requests)")}
        if all(name in have for name in _REQUEST_COLUMNS):
            return
        with self._transaction() as db:  # looked at again inside: another process may have added them
            have = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
            for name in _REQUEST_COLUMNS:
                if name not in have:
                    db.execute(f"ALTER TABLE requests ADD COLUMN {name}")

    def _add_heartbeat_column(self) -> None:
        """runs.heartbeat_at (Unix seconds a running run last said it is alive), added where missing
        without a schema version of its own, so older sse-perf versions still open the database. A
        database that cannot be written (read-only) is read without it."""
        if "heartbeat_at" in {row[1] for row in self.db.execute("PRAGMA table_info(runs)")}:
            return
        try:
            with self._transaction() as db:
                if "heartbeat_at" not in {row[1] for row in db.execute("PRAGMA table_info(runs)")}:
                    db.execute("ALTER TABLE runs ADD COLUMN heartbeat_at REAL")
        except HistoryError:
            if not os.access(self.path, os.W_OK):
                return
            raise

    def _add_targets_table(self) -> None:
        """The saved targets of `sse-perf ui` (name, base URL, flavour, model, where the key is read
        from, headers), made where missing without a schema version of its own, as heartbeat_at is."""
        if self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'targets'").fetchone():
            return
        try:
            with self._transaction() as db:  # IF NOT EXISTS: another process may have made it since the look above
                db.execute(TARGETS_TABLE)
        except HistoryError:
            if not os.access(self.path, os.W_OK):
                return
            raise

    # -- saved targets (sse-perf ui): never a key, only where to read it --
    def targets(self) -> list[dict]:
        rows = self._query("SELECT * FROM targets ORDER BY name COLLATE NOCASE") if self._has_targets() else []
        return [dict({key: row[key] for key in row.keys() if key != "headers_json"},
                     headers=json.loads(row["headers_json"] or "[]")) for row in rows]

    def save_target(self, target: dict) -> None:
        """Insert, or replace the target of the same name. `target`: TARGET_FIELDS (headers a list of
        "Name: value" strings)."""
        self._write("INSERT INTO targets (name, base_url, api, model, key_file, key_env, headers_json, saved_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET base_url = excluded.base_url, "
                    "api = excluded.api, model = excluded.model, key_file = excluded.key_file, "
                    "key_env = excluded.key_env, headers_json = excluded.headers_json, saved_at = excluded.saved_at",
                    (target["name"], target["base_url"], target.get("api"), target.get("model"),
                     target.get("key_file"), target.get("key_env"),
                     json.dumps(list(target.get("headers") or []), ensure_ascii=False), time.time()))

    def delete_target(self, name: str) -> bool:
        return self._write("DELETE FROM targets WHERE name = ?", (name,)).rowcount > 0

    def _has_targets(self) -> bool:
        return bool(self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'targets'")
                    .fetchone())

    def _write(self, sql: str, rows: Iterable[tuple] = (), many: bool = False):
        with self._transaction() as db:
            if many:
                return db.executemany(sql, rows)
            return db.execute(sql, tuple(rows))

    # -- writing one run --
    def begin_run(self, run_dir: Path, run_section: dict) -> int:
        load = run_section.get("load") or {}
        cursor = self._write(
            "INSERT INTO runs (started_at, status, model_name, api, base_url, load_model, threads, rate, run_dir, "
            "options_json, pid, host, heartbeat_at) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_section.get("started_at"), run_section.get("model_name"), run_section.get("api"),
             run_section.get("base_url"), load.get("model", "closed"), run_section.get("threads"), load.get("rate"),
             str(Path(run_dir).resolve()), json.dumps(run_section.get("config") or {}, ensure_ascii=False),
             os.getpid(), socket.gethostname(), time.time()))
        return cursor.lastrowid

    def heartbeat(self, run_id: int, at: Optional[float] = None) -> None:
        """The running run `run_id` is alive (at `at`, Unix seconds; now by default)."""
        self._write("UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                    (time.time() if at is None else at, run_id))

    def add_records(self, run_id: int, records: list[dict]) -> None:
        """One transaction for the batch (records.jsonl objects)."""
        if not records:
            return
        marks = ", ".join("?" for _ in range(len(_REQUEST_COLUMNS) + 1))
        rows = [_request_row(run_id, rec) for rec in records]
        self._write(f"INSERT INTO requests (run_id, {', '.join(_REQUEST_COLUMNS)}) VALUES ({marks})", rows, many=True)

    def finish_run(self, run_id: int, status: str, summary: dict, timeseries: Iterable[dict] = ()) -> None:
        with self._transaction() as db:
            _finish(db, run_id, status, summary, timeseries)

    # -- reading --
    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        try:
            self.db.row_factory = sqlite3.Row
            return self.db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise HistoryError(self._describe(exc)) from None
        finally:
            self.db.row_factory = None

    def list_runs(self, model: Optional[str] = None, since: Optional[float] = None,
                  limit: Optional[int] = None) -> list[dict]:
        """Newest first. `model` matches the model label (case-insensitive substring)."""
        where, args = [], []
        if model:
            where.append("LOWER(COALESCE(model_name, '')) LIKE ?")
            args.append(f"%{model.lower()}%")
        if since is not None:
            where.append("started_at >= ?")
            args.append(since)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [self._run_dict(row) for row in self._query(sql, tuple(args))]

    def ids(self) -> list[int]:
        return [row[0] for row in self._query("SELECT id FROM runs ORDER BY id")]

    def get_run(self, run_id: int) -> Optional[dict]:
        rows = self._query("SELECT * FROM runs WHERE id = ?", (run_id,))
        return self._run_dict(rows[0]) if rows else None

    def _run_dict(self, row: sqlite3.Row) -> dict:
        out = {key: row[key] for key in row.keys() if key not in ("summary_json", "options_json", "slo_json")}
        out["summary"] = json.loads(row["summary_json"]) if row["summary_json"] else None
        out["options"] = json.loads(row["options_json"]) if row["options_json"] else {}
        out["slo"] = json.loads(row["slo_json"]) if row["slo_json"] else None
        out["status"] = self._effective_status(row)
        return out

    def _effective_status(self, row: sqlite3.Row, now: Optional[float] = None) -> str:
        """A run still marked running whose process is gone (killed, crashed) is `killed`: on this
        machine its pid no longer exists, or its heartbeat is older than STALE_S (another machine,
        or a pid taken by another process since). Older rows without a heartbeat go by the pid."""
        if row["status"] != "running":
            return row["status"]
        if row["host"] == socket.gethostname() and row["pid"] and not _pid_alive(row["pid"]):
            return KILLED
        beat = row["heartbeat_at"] if "heartbeat_at" in row.keys() else None
        if beat is not None and (time.time() if now is None else now) - beat > STALE_S:
            return KILLED
        return "running"

    def find_run(self, run_dir: Path) -> Optional[dict]:
        """The newest run recorded for this run folder (by its resolved path), or None."""
        rows = self._query("SELECT * FROM runs WHERE run_dir = ? ORDER BY id DESC LIMIT 1",
                           (str(Path(run_dir).resolve()),))
        return self._run_dict(rows[0]) if rows else None

    def records(self, run_id: int) -> Iterator[dict]:
        for row in self._query(f"SELECT {', '.join(_REQUEST_COLUMNS)} FROM requests WHERE run_id = ? "
                               "ORDER BY request_id", (run_id,)):
            yield {name: _uncell(name, row[name]) for name in _REQUEST_COLUMNS}

    def count_records(self, run_id: int) -> int:
        return self._query("SELECT COUNT(*) AS n FROM requests WHERE run_id = ?", (run_id,))[0]["n"]

    def timeseries(self, run_id: int) -> list[dict]:
        return [json.loads(row["row_json"]) for row in
                self._query("SELECT row_json FROM seconds WHERE run_id = ? ORDER BY second", (run_id,))]

    # -- import --
    def import_run_dir(self, run_dir: Path, summary: Optional[dict] = None,
                       timeseries: Optional[list] = None) -> int:
        """Add a run folder (records, time series, summary) as one run; `summary` and `timeseries`
        when they were rebuilt in memory (rebuild.py) rather than read from the folder. A folder
        whose own run is in this database as `killed` (its row left running, without a summary)
        completes that row, keeping its id, instead of adding a second one."""
        from .storage import load_records, load_summary, load_timeseries

        run_dir = Path(run_dir)
        if summary is None:
            try:
                summary = load_summary(run_dir)
            except (OSError, ValueError) as exc:
                raise HistoryError(f"{run_dir}/summary.json cannot be read: {exc}") from None
        if not isinstance(summary, dict) or not isinstance(summary.get("run") or {}, dict):
            raise HistoryError(f"{run_dir}/summary.json is not an sse-perf summary")

        def records() -> Iterator[dict]:
            for record in load_records(run_dir):
                if not isinstance(record, dict):
                    raise HistoryError(f"{run_dir}/records.jsonl holds a line that is not a record")
                yield record

        def rows() -> list:
            if timeseries is not None:
                return timeseries
            return load_timeseries(run_dir) if (run_dir / "timeseries.csv").is_file() else []

        own = self.find_run(run_dir)
        if own is not None and own["status"] == KILLED and own["summary"] is None:
            return self._complete_killed(own["id"], run_dir, summary, records, rows)
        run = summary.get("run") or {}
        run_id = self.begin_run(run_dir, run)
        try:
            batch: list[dict] = []
            for record in records():
                batch.append(record)
                if len(batch) >= 1000:
                    self.add_records(run_id, batch)
                    batch = []
            self.add_records(run_id, batch)
            self.finish_run(run_id, status_of(summary), summary, rows())
            self._write("UPDATE runs SET pid = NULL, host = NULL, heartbeat_at = NULL WHERE id = ?", (run_id,))
        except (HistoryError, sqlite3.Error, ValueError, TypeError, OSError) as exc:
            with self._transaction() as db:  # no half-imported run left behind
                db.execute("DELETE FROM requests WHERE run_id = ?", (run_id,))
                db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            if isinstance(exc, HistoryError):
                raise
            raise HistoryError(f"{run_dir} cannot be imported: {type(exc).__name__}: {exc}") from None
        return run_id

    def _complete_killed(self, run_id: int, run_dir: Path, summary: dict, records, rows) -> int:
        """A killed run's row, completed from its folder in one transaction: its requests replaced by
        every line of records.jsonl (the last batch the run wrote may be missing), its summary and
        seconds set, its status from the summary (`killed` for a rebuilt one)."""
        marks = ", ".join("?" for _ in range(len(_REQUEST_COLUMNS) + 1))
        insert = f"INSERT INTO requests (run_id, {', '.join(_REQUEST_COLUMNS)}) VALUES ({marks})"
        try:
            with self._transaction() as db:
                db.execute("DELETE FROM requests WHERE run_id = ?", (run_id,))
                db.execute("DELETE FROM seconds WHERE run_id = ?", (run_id,))
                db.executemany(insert, (_request_row(run_id, record) for record in records()))
                _finish(db, run_id, status_of(summary), summary, rows())
                db.execute("UPDATE runs SET pid = NULL, host = NULL, heartbeat_at = NULL WHERE id = ?", (run_id,))
        except (sqlite3.Error, ValueError, TypeError, OSError) as exc:  # rolled back: the row as it was
            raise HistoryError(f"{run_dir} cannot be imported: {type(exc).__name__}: {exc}") from None
        return run_id

    def close(self) -> None:
        self.db.close()


def _request_row(run_id: int, record: dict) -> tuple:
    return (run_id,) + tuple(_cell(name, record.get(name)) for name in _REQUEST_COLUMNS)


def _finish(db: sqlite3.Connection, run_id: int, status: str, summary: dict, timeseries: Iterable[dict]) -> None:
    """The run's row finished (inside the caller's transaction): status, summary, figures, seconds."""
    run = summary.get("run") or {}
    figures = {name: _get(summary, path) for name, path in FIGURES.items()}
    sets = ", ".join(f"{name} = ?" for name in figures)
    db.execute(
        f"UPDATE runs SET status = ?, ended_at = ?, summary_json = ?, slo_json = ?, {sets} WHERE id = ?",
        (status, run.get("ended_at"), json.dumps(summary, ensure_ascii=False),
         json.dumps(summary.get("slo")) if summary.get("slo") is not None else None,
         *figures.values(), run_id))
    db.executemany(
        "INSERT OR REPLACE INTO seconds (run_id, second, row_json) VALUES (?, ?, ?)",
        ((run_id, int(row["second"]), json.dumps(row, ensure_ascii=False)) for row in timeseries))


def _cell(name: str, value):
    if name in _JSON_COLUMNS:
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _uncell(name: str, value):
    if name in _JSON_COLUMNS:
        return json.loads(value) if value else []
    if name in ("ok", "warmup"):
        return bool(value)
    return value


def _pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie (dead, not yet reaped by its parent: Linux's /proc)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:  # no /proc (macOS), or gone since
        return True
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X")


class HistoryRecorder:
    """Collects a run's records and writes them in batches (from the aggregator's thread). The
    first failure turns it off with a warning; the run goes on."""

    def __init__(self, history: History, run_id: int, batch_size: int = 200, clock=time.time):
        self.history = history
        self.run_id = run_id
        self.batch_size = batch_size
        self._batch: list[dict] = []
        self.failure: Optional[str] = None  # not `warning`: that name is a sink hook (aggregator)
        self.written = 0
        self._clock = clock
        self._beat_at = clock()  # begin_run wrote the first heartbeat

    def add(self, record: dict) -> None:
        if self.failure is not None:
            return
        self._batch.append(record)
        if len(self._batch) >= self.batch_size:
            self.flush()

    record = add  # the aggregator's sink: each finished request ...

    def tick(self) -> None:
        """... its batch written once a second, and every HEARTBEAT_S the run's heartbeat."""
        self.flush()
        now = self._clock()
        if self.failure is None and now - self._beat_at >= HEARTBEAT_S:
            self._beat_at = now
            try:
                self.history.heartbeat(self.run_id, now)
            except HistoryError as exc:
                self.failure = f"history: {exc}; the run goes on without it"

    def flush(self) -> None:
        if self.failure is not None or not self._batch:
            return
        batch, self._batch = self._batch, []
        try:
            self.history.add_records(self.run_id, batch)
            self.written += len(batch)
        except HistoryError as exc:
            self.failure = f"history: {exc}; the run goes on without it"


def default_history_path(output_dir: str) -> str:
    return str(Path(output_dir) / "history.db")


def since_to_timestamp(text: str, now: Optional[float] = None) -> float:
    """'2026-11-01', '2026-11-01T10:00', '7d', '12h', '30m' -> Unix seconds. ValueError if neither."""
    now = time.time() if now is None else now
    text = text.strip()
    units = {"d": 86400, "h": 3600, "m": 60}
    if text and text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        return now - float(text[:-1]) * units[text[-1]]
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()
