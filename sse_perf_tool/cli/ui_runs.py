"""The console's runs (`sse-perf ui`): a New run form -> the command line it stands for, checked
by the run command's own parser and validation (errors by the form's field), and started as
that command line in a process of its own with --live, so the browser can watch and stop it.

A form is a dict of strings (and `demo`: a bool). The command is `sse-perf` with exactly the
options shown to the user; the console adds only where the run folder and the history go, the
language and the live view's address. An API key is never in the form: a key file's path, or
the name of an environment variable of the console's that the run reads as SSE_PERF_API_KEY.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from typing import Optional

from ..config import ConfigError, RunConfig
from ..masking import SECRET_HEADER

# form field -> the option it sets (one value), in the order the command line shows them
SINGLE = (("base_url", "--base-url"), ("api", "--api"), ("model", "--model"), ("model_name", "--model-name"),
          ("key_file", "--api-key-file"), ("param_file", "--param-file"), ("threads", "--threads"),
          ("rate", "--rate"), ("ramp_up", "--ramp-up"), ("duration", "--duration"), ("requests", "--requests"))
# form field -> the repeatable option each of its lines sets
LINES = (("datasets", "--dataset"), ("slo", "--slo"), ("gpu", "--gpu"), ("server_metrics", "--server-metrics"),
         ("headers", "--header"))
FIELDS = ("demo", "key_env", *(name for name, _ in SINGLE + LINES))
_FIELD_OF = {option: name for name, option in SINGLE + LINES}
_FIELD_OF.update({"--demo": "demo", "--api-key": "key_file", "--dataset": "datasets", "--query": "param_file"})
_OPTION = re.compile(r"--[a-z][a-z-]*")
_LIVE_URL = re.compile(r"live view: (http://\S+)")
DEFAULT_API = RunConfig.__dataclass_fields__["api"].default  # the run command's own: the command shown leaves it out
START_LIMIT_S = 60.0  # a run that neither fails nor serves its live view by then is reported as stuck


class FormErrors(Exception):
    """{field: message} (field "" when no field is to blame)."""

    def __init__(self, errors: dict):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def command_of(form: dict) -> list[str]:
    """The run's options from the form, as the user would type them."""
    argv = ["--demo"] if form.get("demo") else []
    for name, option in SINGLE:
        value = str(form.get(name) or "").strip()
        if value and not (name == "base_url" and form.get("demo")) and not (name == "api" and value == DEFAULT_API):
            argv += [option, value]
    for name, option in LINES:
        for line in str(form.get(name) or "").splitlines():
            if line.strip():
                argv += [option, line.strip()]
    return argv


def field_of(message: str) -> str:
    """The form field a usage error is about: the first option it names that the form sets."""
    for option in _OPTION.findall(message):
        if option in _FIELD_OF:
            return _FIELD_OF[option]
    return ""


def check_key_source(form: dict) -> str:
    """The name of the environment variable the key is read from ("" for none): a variable's name,
    and not together with a key file. FormErrors on key_env otherwise."""
    name = str(form.get("key_env") or "").strip()
    if name and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise FormErrors({"key_env": f"{name!r} is not an environment variable name"})
    if name and str(form.get("key_file") or "").strip():
        raise FormErrors({"key_env": "give the key file or the environment variable, not both"})
    return name


def refuse_credential_headers(text) -> None:
    """A key in a header would be shown in the command line, the page and the process list: it
    belongs in the key file or the environment variable."""
    for line in str(text or "").splitlines():
        name = line.split(":", 1)[0].strip()
        if name and SECRET_HEADER.search(name):
            raise FormErrors({"headers": f"{name} carries a secret: keep it in the key file or the environment "
                                         "variable the form names, not in a header here"})


def _key_env(form: dict, environ: dict) -> dict:
    """The run's environment: the console's, with the key from the variable the form names."""
    env = dict(environ, PYTHONUNBUFFERED="1")
    env.pop("SSE_PERF_API_KEY", None)  # only the form says where this run's key comes from
    name = check_key_source(form)
    if name:
        if not str(environ.get(name) or "").strip():
            raise FormErrors({"key_env": f"the environment variable {name} is not set where sse-perf ui runs"})
        env["SSE_PERF_API_KEY"] = environ[name].strip()
    return env


def check(form: dict, environ: Optional[dict] = None) -> list[str]:
    """The run's options, checked as `sse-perf` checks them before sending anything (the parser,
    the validation, the query and key files); FormErrors by field otherwise."""
    from ..providers import ApiKeyProvider, QueryProvider, WeightedQueryProvider, parse_dataset_spec
    from ..slo import parse_slos
    from .run import build_run_parser, config_from_args

    environ = dict(os.environ if environ is None else environ)
    argv = command_of(form)
    env = _key_env(form, environ)
    refuse_credential_headers(form.get("headers"))
    parser = build_run_parser()

    def usage_error(message: str):
        raise ConfigError(message)

    parser.error = usage_error  # type: ignore[method-assign]  # one line, by field, instead of an exit
    try:
        cfg = config_from_args(parser.parse_args(argv), env)
        if cfg.slo:
            parse_slos(cfg.slo)
        if cfg.datasets:
            WeightedQueryProvider.from_specs([parse_dataset_spec(text) for text in cfg.datasets], cfg.seed)
        else:
            QueryProvider.from_config(cfg.param_file, cfg.query)
        ApiKeyProvider.from_config(cfg.api_key_file, cfg.api_key)
    except ConfigError as exc:
        raise FormErrors({field_of(str(exc)): str(exc)}) from None
    return argv


class ConsoleRun:
    """One run started by the console: its process, its output, its live view."""

    def __init__(self, number: int, argv: list, full: list, env: dict):
        self.number = number
        self.argv = argv
        self.command = shlex.join(["sse-perf", *argv])
        self.started_at = time.time()
        self.lines: deque = deque(maxlen=400)
        self.errors: deque = deque(maxlen=50)
        self.live_url: Optional[str] = None
        self.proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                     start_new_session=True)  # the console's Ctrl-C is not the run's
        self._seen_url = threading.Event()
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump_out(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            found = _LIVE_URL.search(line)
            if found and self.live_url is None:
                self.live_url = found.group(1)
                self._seen_url.set()
        self._seen_url.set()

    def _pump_err(self) -> None:
        for line in self.proc.stderr:
            self.errors.append(line.rstrip("\n"))

    def wait_started(self, limit_s: float = START_LIMIT_S) -> None:
        """Until the live view is served; FormErrors with the run's own error when it exited first."""
        self._seen_url.wait(limit_s)
        if self.live_url is not None:
            return
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.stop()
            raise FormErrors({"": f"the run printed no live view within {limit_s:g} s and was stopped"}) from None
        message = next((line for line in reversed(self.errors) if line.strip()), "") or \
            f"the run ended at once with exit code {self.proc.returncode}"
        message = re.sub(r"^sse-perf: error: ", "", message)
        raise FormErrors({field_of(message): message})

    @property
    def exit_code(self) -> Optional[int]:
        return self.proc.poll()

    def stop(self) -> bool:
        """As Ctrl-C in its terminal: the requests in flight cancelled, every file written."""
        if self.proc.poll() is not None:
            return False
        self.proc.send_signal(signal.SIGINT)
        return True

    def as_json(self) -> dict:
        return {"number": self.number, "command": self.command, "started_at": self.started_at,
                "live_url": self.live_url, "exit_code": self.exit_code, "last_line": self.lines[-1] if self.lines
                else ""}


class ConsoleRuns:
    """The runs this console started. `output_dir`, `history`: where they write (the console's);
    `live_host`: the address their live views bind (the console's own)."""

    def __init__(self, output_dir: str, history: str, lang: str = "en", live_host: str = "127.0.0.1",
                 environ: Optional[dict] = None):
        self.output_dir, self.history, self.lang, self.live_host = output_dir, history, lang, live_host
        self.environ = dict(os.environ if environ is None else environ)
        self._runs: dict[int, ConsoleRun] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, form: dict) -> ConsoleRun:
        argv = check(form, self.environ)
        env = _key_env(form, self.environ)
        live = f"[{self.live_host}]:0" if ":" in self.live_host else f"{self.live_host}:0"
        full = [sys.executable, "-m", "sse_perf_tool", *argv, "--output-dir", self.output_dir, "--history",
                self.history, "--lang", self.lang, "--live", live]
        if self.live_host not in ("127.0.0.1", "localhost", "::1"):
            full.append("--allow-remote")
        with self._lock:
            run = ConsoleRun(next(self._numbers), argv, full, env)
            self._runs[run.number] = run
        try:
            run.wait_started()
        except FormErrors:
            with self._lock:  # it never ran: not one of the console's runs
                self._runs.pop(run.number, None)
            raise
        return run

    def get(self, number: int) -> Optional[ConsoleRun]:
        with self._lock:
            return self._runs.get(number)

    def all(self) -> list[ConsoleRun]:
        with self._lock:
            return sorted(self._runs.values(), key=lambda run: -run.number)

    def stop_all(self) -> None:
        for run in self.all():
            run.stop()
        for run in self.all():
            try:
                run.proc.wait(30)
            except subprocess.TimeoutExpired:
                run.proc.kill()
