"""`--api auto`: the preflight against a Dify app's Service API, over loopback.

The server answers `GET /v1/info` and `GET /v1/parameters` as Dify's service_api controllers
do (the project's wire notes: `/info` gives `name`, `description`, `tags`, `mode`; `/parameters`
gives `user_input_form`, a list of `{"<control type>": {"label", "variable", "required", ...}}`),
and a bad key as Dify does: HTTP 401 with `{"code": "unauthorized", "message": ..., "status": 401}`."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest

from sse_perf_tool import cli
from sse_perf_tool.config import ConfigError, RunConfig
from sse_perf_tool.dify_app import probe_dify_app, resolve_auto
from sse_perf_tool.providers import QueryProvider
from sse_perf_tool.query import Query

from .loopback_http import LoopbackServer

KEY = "app-GoodKey1234"
FORM = [{"text-input": {"label": "City", "variable": "city", "required": True, "max_length": 48, "default": ""}},
        {"paragraph": {"label": "Notes", "variable": "notes", "required": False, "default": ""}}]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.server.seen.append(("GET", self.path))
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            return self._json(401, {"code": "unauthorized", "message": "Access token is invalid", "status": 401})
        if self.path == "/v1/info":
            return self._json(200, {"name": "Trip planner", "description": "", "tags": [], "mode": self.server.mode})
        if self.path == "/v1/parameters":
            return self._json(200, {"opening_statement": "", "user_input_form": self.server.form})
        self._json(404, {"code": "not_found", "message": "Not Found", "status": 404})

    def do_POST(self):
        self.server.seen.append(("POST", self.path))
        self._json(500, {"code": "unexpected", "message": "no load expected", "status": 500})


@pytest.fixture
def dify():
    servers = []

    def start(mode: str, form=()) -> LoopbackServer:
        server = LoopbackServer(_Handler, mode=mode, form=list(form), seen=[]).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize("mode,api", [("chat", "dify-chat"), ("agent-chat", "dify-chat"), ("advanced-chat", "dify-chat"),
                                      ("completion", "dify-completion"), ("workflow", "dify-workflow")])
def test_the_apps_mode_picks_the_flavour(dify, mode, api):
    server = dify(mode, FORM)
    app = probe_dify_app(server.base, KEY)
    assert (app.name, app.mode, app.api, app.required_inputs) == ("Trip planner", mode, api, ("city",))


def test_a_required_input_missing_from_the_workload_is_named_before_any_load(dify):
    server = dify("completion", FORM)
    cfg = RunConfig(base_url=server.base, api="auto")
    with pytest.raises(ConfigError, match="requires input 'city'"):
        resolve_auto(cfg, QueryProvider([Query("hi", {"notes": "x"})]), KEY)
    resolved = resolve_auto(cfg, QueryProvider([Query("hi", {"city": "Lyon"})]), KEY)
    assert resolved.api == "dify-completion"
    assert all(method == "GET" for method, _ in server.seen)


def test_a_refused_key_is_exit_2_after_the_one_preflight_call_and_nothing_is_sent(dify, tmp_path, capsys):
    server = dify("chat")
    code = cli.main(["--base-url", server.base, "--api", "auto", "--api-key", "app-WrongKey9876", "--requests", "3",
                     "--output-dir", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "the API key was refused" in err and "401" in err and "WrongKey9876" not in err
    assert server.seen == [("GET", "/v1/info")]


def test_a_target_that_is_not_a_dify_app_is_exit_2(dify, tmp_path, capsys):
    server = dify("chat")
    code = cli.main(["--base-url", server.base + "/not-dify", "--api", "auto", "--api-key", KEY,
                     "--output-dir", str(tmp_path), "--quiet"])
    assert code == 2 and "is this a Dify app's API" in capsys.readouterr().err
