"""`--api auto` for Dify targets: one preflight before any load. `GET /v1/info` tells the app's
mode (chat, agent-chat, advanced-chat -> dify-chat; completion -> dify-completion; workflow ->
dify-workflow), `GET /v1/parameters` the app's input variables and which are required (a required
one missing from the workload would fail every request). An invalid key, a target that is not a
Dify app or a missing input is a usage error (exit 2), said in one line.

Imports config (RunConfig, ConfigError), flavors (names, Dify's auth header), http_session (the
testers' session), masking, records (one_line) and requests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Optional

import requests

from .config import ConfigError, RunConfig, mask_url, tls_verify
from .flavors import get_flavor
from .http_session import new_session
from .masking import mask_text
from .records import one_line

MODE_TO_API = {"chat": "dify-chat", "agent-chat": "dify-chat", "advanced-chat": "dify-chat",
               "completion": "dify-completion", "workflow": "dify-workflow"}
PREFLIGHT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DifyApp:
    name: str
    mode: str
    api: str  # the flavour for that mode
    required_inputs: tuple = ()  # variables of user_input_form marked required


def probe_dify_app(base_url: str, api_key: Optional[str], headers: Iterable = (),
                   timeout_s: float = PREFLIGHT_TIMEOUT_S, verify=None) -> DifyApp:
    """The app behind `base_url` (…/v1), from /info and /parameters; ConfigError when it cannot be told.
    Asked through the testers' own session (proxies, none for loopback; --ca-bundle or --insecure as
    `verify`) and with Dify's auth header, as the load will be."""
    session = new_session(base_url, verify)
    try:
        info = _get(session, base_url, "/info", api_key, headers, timeout_s)
        parameters = _get(session, base_url, "/parameters", api_key, headers, timeout_s)
    finally:
        session.close()
    mode = info.get("mode") if isinstance(info, dict) else None
    if mode not in MODE_TO_API:
        raise ConfigError(f"--api auto: {base_url}/info gave app mode {mode!r}; expected one of "
                          f"{', '.join(MODE_TO_API)} (or give --api)")
    return DifyApp(str(info.get("name") or ""), mode, MODE_TO_API[mode], _required(parameters))


def _get(session, base_url: str, path: str, api_key: Optional[str], headers: Iterable, timeout_s: float):
    sent = dict(headers)
    if api_key:
        sent.update(get_flavor("dify-chat").auth_headers(api_key))
    url = base_url.rstrip("/") + path
    try:
        response = session.get(url, headers=sent, timeout=(timeout_s, timeout_s), allow_redirects=False)
    except requests.exceptions.RequestException as exc:
        raise ConfigError(f"--api auto: cannot ask {mask_url(url)}: {type(exc).__name__}") from None
    body = mask_text(response.content[:2000].decode("utf-8", "replace"), [api_key or ""])
    if response.status_code in (401, 403):
        raise ConfigError(f"--api auto: the API key was refused: {url} answered HTTP {response.status_code} "
                          f"{one_line(body, 200)}")
    if response.status_code != 200:
        raise ConfigError(f"--api auto: {url} answered HTTP {response.status_code}: is this a Dify app's API "
                          f"(…/v1)? Give --api to say the flavour")
    try:
        return response.json()
    except ValueError:
        raise ConfigError(f"--api auto: {url} did not answer JSON: is this a Dify app's API? Give --api") from None


def _required(parameters) -> tuple:
    """Required variables of `user_input_form`: a list of {"<type>": {"variable", "required", ...}}."""
    form = parameters.get("user_input_form") if isinstance(parameters, dict) else None
    out = []
    for item in form if isinstance(form, list) else ():
        for field in (item.values() if isinstance(item, dict) else ()):
            if isinstance(field, dict) and field.get("required") and isinstance(field.get("variable"), str):
                out.append(field["variable"])
    return tuple(out)


def resolve_auto(cfg: RunConfig, queries, api_key: Optional[str], say=None) -> RunConfig:
    """With `--api auto`: the config with the app's flavour, after checking that every query has
    every required input. Any other --api: the config as it is."""
    if cfg.api != "auto":
        return cfg
    app = probe_dify_app(cfg.base_url, api_key, cfg.headers, verify=tls_verify(cfg))
    flavour = get_flavor(app.api)
    given = {"query"} if flavour.name != "dify-chat" else set()  # completion and workflow send the prompt as `query`
    missing = [v for v in app.required_inputs
               if v not in given and any(v not in q.inputs for q in queries.all())]
    if missing:
        raise ConfigError(f"the app requires input {', '.join(repr(v) for v in missing)}: give it in every query "
                          "(a JSONL --param-file line {\"query\": ..., \"inputs\": {...}})")
    if cfg.turns > 1 and not flavour.conversation:
        raise ConfigError(f"--turns needs a chat app; this one is a {app.mode} app")
    if say is not None:
        say(f"--api auto: {app.name or 'the app'} ({app.mode} app): {app.api}")
    return replace(cfg, api=app.api)
