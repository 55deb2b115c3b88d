"""The console's pages and calls (`sse-perf ui`), on web_guard's server (its token, cookie, Host
check and POST rule).

Pages (GET): `/` Runs (the history, filtered by model name, target, status, date), `/runs/ID`
(a run's facts, its files and its report inline), `/runs/ID/report`, `/runs/ID/files/NAME`
(downloads of the run folder's files), `/compare?ids=1,2` (the comparison report), `/new` (the
New run form, `?target=NAME` filled from a saved target), `/targets`. Calls (POST, JSON in and
out): `/api/check` and `/api/start` (a form), `/api/stop` ({"number"}), `/api/runs` (the runs
started here), `/api/targets/save` and `/api/targets/delete`.

Imports the history, the comparison and the HTML pipeline, and ui_runs for the runs.
"""

from __future__ import annotations

import json
import shlex
import time
from contextlib import closing as _closing
from pathlib import Path
from typing import Optional
from urllib.parse import quote

from ..config import API_NAMES, ConfigError, parse_header
from ..history import HistoryError
from ..html_page import render_page
from ..i18n import table
from ..masking import SECRET_HEADER, mask_known, mask_url
from ..web_guard import GuardedHandler, GuardedServer
from .ui_runs import FIELDS, ConsoleRuns, FormErrors, check, check_key_source

RUN_FILES = ("report.html", "summary.json", "records.jsonl", "timeseries.csv", "requests.csv", "gpu.csv")
STATUSES = ("completed", "interrupted", "stopped_early", "failed", "running", "killed", "incomplete")
_TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json", ".jsonl": "application/x-ndjson",
          ".csv": "text/csv; charset=utf-8"}
TARGET_FIELDS = ("name", "base_url", "api", "model", "key_file", "key_env", "headers")


class UiServer(GuardedServer):
    def __init__(self, host: str, port: int, history: str, output_dir: str, lang: str = "en",
                 token: Optional[str] = None):
        super().__init__(host, port, _Handler, token, name="sse-perf-ui")
        self.history_path, self.output_dir, self.lang = history, output_dir, lang
        self.t = table("UI", lang)
        self.runs = ConsoleRuns(output_dir, history, lang, live_host=host)

    def open_history(self):
        from ..history import History

        return History(self.history_path)

    def close(self) -> None:
        self.runs.stop_all()
        super().close()


def check_target(data: dict) -> dict:
    """A target to save: a name, an http(s) base URL, a known flavour; headers `Name: value` and
    none that carries a secret (keys are read from a file or a variable, never kept here)."""
    from ..config import validate_base_url

    target = {name: str(data.get(name) or "").strip() for name in TARGET_FIELDS if name != "headers"}
    errors = {}
    if not target["name"]:
        errors["name"] = "a target needs a name"
    try:
        target["base_url"] = validate_base_url(target["base_url"])
    except ConfigError as exc:
        errors["base_url"] = str(exc)
    if target["api"] and target["api"] not in API_NAMES:
        errors["api"] = f"the flavour must be one of {', '.join(API_NAMES)}"
    try:
        check_key_source(target)
    except FormErrors as exc:
        errors.update(exc.errors)
    headers = [line.strip() for line in str(data.get("headers") or "").splitlines() if line.strip()]
    for line in headers:
        try:
            name, _ = parse_header(line)
        except ConfigError as exc:
            errors["headers"] = str(exc)
            break
        if SECRET_HEADER.search(name):
            errors["headers"] = (f"{name} carries a secret: keep it in the key file or the environment variable, "
                                 "which the target names, not in the history database")
            break
    if errors:
        raise FormErrors(errors)
    target["headers"] = headers
    return {key: (value or None) if key not in ("name", "base_url", "headers") else value
            for key, value in target.items()}


def _since(text: str) -> Optional[float]:
    if not text:
        return None
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%d"))
    except ValueError:
        return None


def _row(run: dict) -> dict:
    """What the Runs table shows of a history run."""
    from ..history_view import load_label

    def number(key, digits=1):
        value = run.get(key)
        return "—" if value is None else f"{value:,.{digits}f}"

    folder = Path(run.get("run_dir") or "")
    return {"id": run["id"], "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["started_at"])),
            "status": run.get("status") or "", "model": run.get("model_name") or "",
            "target": mask_url(run.get("base_url") or ""), "api": run.get("api") or "", "load": load_label(run),
            "requests": "—" if run.get("requests_total") is None else f"{int(run['requests_total']):,}",
            "success": number("success_pct"), "tps": number("output_tokens_per_s"),
            "ttft": number("ttft_p95_ms", 0), "report": (folder / "report.html").is_file(),
            "files": [name for name in RUN_FILES if (folder / name).is_file()], "run_dir": str(folder)}


class _Handler(GuardedHandler):
    server_version = "sse-perf-ui"

    # -- pages --
    def _page(self, page: str, **context) -> None:
        ui = self.guard
        data = {"token": ui.token, "i18n": ui.t, "page": page, **context.pop("data", {})}
        html = render_page("ui.html.j2", vendored=(), app_js="ui_app.js", data=data, connect="'self'",
                           frame="'self'", t=ui.t, lang=ui.lang, page=page, **context)
        self.send(200, html.encode("utf-8"), "text/html; charset=utf-8")

    def guarded_get(self, path: str, query: dict) -> None:
        first = {key: values[0] for key, values in query.items() if values}
        parts = [part for part in path.split("/") if part]
        try:
            if not parts:
                self._runs_page(first)
            elif parts[0] == "runs" and len(parts) >= 2 and parts[1].isdigit():
                self._run(int(parts[1]), parts[2:])
            elif parts == ["compare"]:
                self._compare(first.get("ids", ""))
            elif parts == ["new"]:
                self._new_page(first.get("target", ""))
            elif parts == ["targets"]:
                self._targets_page()
            else:
                self.refuse(404, "sse-perf ui: no such page")
        except ConfigError as exc:
            self.refuse(404, f"sse-perf ui: {mask_known(str(exc))}")
        except HistoryError as exc:
            self.refuse(500, f"sse-perf ui: {mask_known(str(exc))}")

    def _runs_page(self, query: dict) -> None:
        ui = self.guard
        model, target, status = query.get("model", ""), query.get("target", ""), query.get("status", "")
        since = query.get("since", "")
        runs = []
        if Path(ui.history_path).is_file():
            with _closing(ui.open_history()) as db:
                runs = db.list_runs(model=model or None, since=_since(since))
        rows = [_row(run) for run in runs]
        rows = [row for row in rows if (not target or target.lower() in row["target"].lower())
                and (not status or row["status"] == status)]
        self._page("runs", rows=rows, filters={"model": model, "target": target, "status": status, "since": since},
                   statuses=STATUSES, db=ui.history_path)

    def _history_run(self, number: int) -> dict:
        ui = self.guard
        if not Path(ui.history_path).is_file():
            raise ConfigError(f"no run #{number}: no history at {ui.history_path}")
        with _closing(ui.open_history()) as db:
            run = db.get_run(number)
        if run is None:
            raise ConfigError(f"no run #{number} in {ui.history_path}")
        return run

    def _run(self, number: int, rest: list) -> None:
        run = self._history_run(number)
        folder = Path(run.get("run_dir") or "")
        if not rest:
            self._page("run", run=_row(run), present=folder.is_dir())
            return
        name = rest[1] if rest[0] == "files" and len(rest) == 2 else ("report.html" if rest == ["report"] else None)
        if name not in RUN_FILES or not (folder / name).is_file():  # only the run folder's own files, by name
            self.refuse(404, "sse-perf ui: that run has no such file")
            return
        body = (folder / name).read_bytes()
        headers = () if rest == ["report"] else (
            ("Content-Disposition", f"attachment; filename=\"run-{number}-{name}\""),)
        self.send(200, body, _TYPES[Path(name).suffix], headers=headers)

    def _compare(self, ids: str) -> None:
        from ..compare import compare_runs, load_runs
        from ..compare_report import render_compare
        from .history import resolve_run_id

        chosen = sorted({part.strip() for part in ids.split(",") if part.strip()},  # the oldest is the baseline
                        key=lambda text: (not text.isdigit(), int(text) if text.isdigit() else 0, text))
        if len(chosen) < 2:
            raise ConfigError("a comparison needs two runs or more (select them in Runs)")
        ui = self.guard
        with _closing(ui.open_history()) as db:  # open until the report is made: the runs read their records from it
            runs = load_runs(chosen, lambda: db, resolve_run_id)
            html = render_compare(compare_runs(runs, None), runs, lang=ui.lang)
        self.send(200, html.encode("utf-8"), "text/html; charset=utf-8")

    def _targets(self) -> list:
        ui = self.guard
        if not Path(ui.history_path).is_file():
            return []
        with _closing(ui.open_history()) as db:
            return db.targets()

    def _new_page(self, target: str) -> None:
        targets = self._targets()
        self._page("new", apis=API_NAMES, data={"targets": targets, "chosen": target, "fields": list(FIELDS)},
                   targets=targets, chosen=target)

    def _targets_page(self) -> None:
        targets = self._targets()
        self._page("targets", targets=targets, apis=API_NAMES, db=self.guard.history_path,
                   links={t["name"]: "/new?target=" + quote(t["name"]) for t in targets})

    # -- calls --
    def guarded_post(self, path: str, body: bytes) -> None:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self._json(400, {"errors": {"": "the body must be a JSON object"}})
            return
        ui = self.guard
        try:
            if path == "/api/check":
                self._json(200, {"ok": True, "errors": {}, "command": shlex.join(["sse-perf", *check(data, ui.runs.environ)])})
            elif path == "/api/start":
                run = ui.runs.start(data)
                self._json(200, {"ok": True, "errors": {}, **run.as_json(), "live_url": self._reachable(run.live_url)})
            elif path == "/api/stop":
                run = ui.runs.get(int(data.get("number") or 0))
                self._json(200 if run else 404, {"stopping": bool(run and run.stop())})
            elif path == "/api/runs":
                self._json(200, {"runs": [dict(run.as_json(), live_url=self._reachable(run.live_url))
                                          for run in ui.runs.all()]})
            elif path == "/api/targets/save":
                target = check_target(data)
                with _closing(ui.open_history()) as db:
                    db.save_target(target)
                self._json(200, {"ok": True, "errors": {}, "saved": target["name"]})
            elif path == "/api/targets/delete":
                with _closing(ui.open_history()) as db:
                    self._json(200, {"deleted": db.delete_target(str(data.get("name") or ""))})
            else:
                self._json(404, {"errors": {"": "no such call"}})
        except FormErrors as exc:
            self._json(200, {"ok": False, "errors": {field: mask_known(text) for field, text in exc.errors.items()}})
        except HistoryError as exc:
            self._json(500, {"errors": {"": mask_known(str(exc))}})

    def _reachable(self, url: Optional[str]) -> Optional[str]:
        """A live view's URL as this browser reaches it: a run bound to 0.0.0.0 (--allow-remote) is
        reached by the name the browser used for the console."""
        if url and self.guard.allowed_hosts is None:
            host = self.headers.get("Host", "").rsplit(":", 1)[0]
            return url.replace("://0.0.0.0:", f"://{host}:", 1) if host else url
        return url

    def _json(self, status: int, data: dict) -> None:
        self.send(status, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json")
