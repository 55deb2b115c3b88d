"""The HTML pipeline both reports share (the run report of report.py and the comparison report
of compare_report.py): finding templates/, the Jinja2 environment, the vendored scripts inlined
(Chart.js, its zoom plugin and Hammer.js ship in `sse_perf_tool/assets/`), the
Content-Security-Policy that allows exactly the inlined scripts by their SHA-256, and the page's
data as JSON that is safe inside a <script> element. The output references no external URL.

Imports `report_format` (its functions are the templates' filters) from the package; Jinja2,
markupsafe and importlib.resources lazily, inside the functions, so that `sse-perf --help`
stays fast.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Iterable

from .report_format import (fmt_int, fmt_lag, fmt_ms, fmt_num, fmt_option, fmt_pct, fmt_seconds, fmt_time,
                            fmt_unit)

VENDORED = (  # (name, file in assets/, version); load order matters: the zoom plugin reads the globals Chart and Hammer
    ("hammer", "hammer.min.js", "2.0.8"),
    ("chartjs", "chart.umd.min.js", "4.6.1"),
    ("zoom", "chartjs-plugin-zoom.min.js", "2.2.0"),
)
VERSIONS = {name: version for name, _, version in VENDORED}
_FILES = {name: filename for name, filename, _ in VENDORED}


def package_dir(name: str):
    """A Traversable of sse_perf_tool/<name>, else the repo's top-level <name>/ (dev install)."""
    import importlib.resources  # lazily, like jinja2: keeps `sse-perf --help` fast

    packaged = importlib.resources.files("sse_perf_tool") / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name


def templates_dir():
    return package_dir("templates")


_BANNER_URL = re.compile(r"https?://")
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.M)


@functools.lru_cache(maxsize=None)
def asset(filename: str) -> str:
    """A vendored script ready to inline: no source-map line and no URL in its licence
    banners (the output must reference no external URL), nothing that ends a <script>."""
    text = (package_dir("assets") / filename).read_text("utf-8")
    text = _SOURCE_MAP.sub("", text)

    def clean_comment(match: re.Match) -> str:
        return _BANNER_URL.sub("", match.group(0))

    text = re.sub(r"/\*!.*?\*/", clean_comment, text, flags=re.S)
    if _BANNER_URL.search(text):
        raise RuntimeError(f"vendored asset {filename} holds a URL outside its banner")
    return text.replace("</script", "<\\/script").rstrip() + "\n"


def app_script(filename: str) -> str:
    """A page's own script from templates/, ready to inline."""
    return (templates_dir() / filename).read_text("utf-8").replace("</script", "<\\/script")


def csp_hash(script: str) -> str:
    import base64
    import hashlib

    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def content_security_policy(scripts: Iterable[str], connect: str = "'none'", frame: str = "'none'") -> str:
    """Nothing but the given inline scripts, inline styles and data: images; no connection out
    (`connect`, `frame`: the live view and the console talk to, and frame, their own origin: 'self')."""
    return ("default-src 'none'; script-src " + " ".join(csp_hash(s) for s in scripts)
            + f"; style-src 'unsafe-inline'; img-src data:; font-src 'none'; connect-src {connect};"
            + (f" frame-src {frame};" if frame != "'none'" else "")
            + " base-uri 'none'; form-action 'none'")


def script_json(data: Any) -> str:
    """JSON that is safe inside <script type="application/json">: no '<', '>', '&',
    U+2028 or U+2029 can end the element or confuse a parser; JSON.parse reads it back."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


@functools.lru_cache(maxsize=1)
def environment():
    import jinja2  # imported lazily: `sse-perf --help` must not pay for it

    base = templates_dir()

    def load(name: str):
        path = base / name
        if not path.is_file():
            return None
        return path.read_text("utf-8"), None, lambda: True

    env = jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=fmt_num, fint=fmt_int, pct=fmt_pct, ms=fmt_ms, seconds=fmt_seconds,
                       when=fmt_time, option=fmt_option, unit_value=fmt_unit, lag=fmt_lag)
    return env


def render_page(template: str, *, vendored: Iterable[str], app_js: str, data: Any, connect: str = "'none'",
                frame: str = "'none'", **context: Any) -> str:
    """`template` rendered with `context` plus what every page has: `scripts` (the vendored
    scripts named, in the order given, then `app_js` from templates/), `csp` (allowing exactly
    those, and connections to `connect`) and `data_json` (`data` for the page's script)."""
    from markupsafe import Markup  # ships with Jinja2

    scripts = [asset(_FILES[name]) for name in vendored] + [app_script(app_js)]
    return environment().get_template(template).render(
        **context, csp=content_security_policy(scripts, connect, frame), data_json=Markup(script_json(data)),
        scripts=[Markup(s) for s in scripts])
