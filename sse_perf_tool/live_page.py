"""The live view's page (--live): templates/live.html.j2 with the inlined Chart.js and
templates/live_app.js, its strings (i18n LIVE) and what the run is, rendered once when the run
starts; the figures come from the event stream. Imports html_page and i18n.
"""

from __future__ import annotations

from typing import Iterable, Optional

from .html_page import app_script, asset, content_security_policy, render_page
from .i18n import table

APP_JS = "live_app.js"
_CONNECT = "'self'"  # the page reads /events and posts /stop to its own origin, nowhere else


def render_live_page(lang: str, token: str, facts: Iterable[tuple[str, str]], kept: int,
                     model_name: Optional[str] = None) -> tuple[bytes, str]:
    """(the page's HTML, its Content-Security-Policy). `facts`: (label, text) of the run (target,
    flavour, load) for the header; `kept`: how many seconds the page keeps."""
    t = table("LIVE", lang)
    data = {"i18n": t, "token": token, "locale": "zh-CN" if lang == "zh" else "en-US", "kept": kept}
    html = render_page("live.html.j2", vendored=("chartjs",), app_js=APP_JS, data=data, connect=_CONNECT,
                       t=t, lang=lang, facts=list(facts), kept=kept, model_name=model_name)
    return html.encode("utf-8"), content_security_policy([asset("chart.umd.min.js"), app_script(APP_JS)], _CONNECT)
