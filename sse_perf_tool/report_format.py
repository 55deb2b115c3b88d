"""Formatting of the HTML report's values: numbers, percentages, milliseconds, seconds, local
times and option values as text, '—' (NULL) for no value, and `shorten` for one-line excerpts.

Imports only `report_load.finite` from the package. html_page registers these functions as the
templates' Jinja2 filters; compare_report formats its settings with fmt_seconds and fmt_time.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .report_load import finite as _finite

NULL = "—"


def fmt_num(value: Any, digits: int = 1) -> str:
    """Thousands separators and `digits` decimals; '—' for null."""
    v = _finite(value)
    return NULL if v is None else f"{v:,.{digits}f}"


def fmt_int(value: Any) -> str:
    v = _finite(value)
    return NULL if v is None else f"{round(v):,}"


def fmt_pct(value: Any) -> str:
    v = _finite(value)
    if v is None:
        return NULL
    # 99.95 must not read as 100.0 % while requests failed
    text = f"{v:.2f}" if 99.0 < v < 100.0 else f"{v:.1f}"
    return f"{text} %"


def fmt_ms(value: Any) -> str:
    v = _finite(value)
    return NULL if v is None else f"{v:,.1f} ms"


def fmt_lag(value: Any) -> str:
    """Scheduling lag: 2 decimals below 1 ms, where a healthy probe wakes up."""
    v = _finite(value)
    return NULL if v is None else (f"{v:.2f} ms" if abs(v) < 1 else f"{v:,.1f} ms")


def fmt_seconds(value: Any) -> str:
    v = _finite(value)
    if v is None:
        return NULL
    text = f"{v:,.1f} s"
    if v >= 60:
        whole = int(round(v))
        h, rest = divmod(whole, 3600)
        m, s = divmod(rest, 60)
        text += f" ({h}:{m:02d}:{s:02d})" if h else f" ({m}:{s:02d})"
    return text


def fmt_unit(value: Any, unit: str) -> str:
    """A value in its unit: ms and % as everywhere in the report, rates with 2 decimals."""
    if unit == "ms":
        return fmt_ms(value)
    if unit == "%":
        return fmt_pct(value)
    text = fmt_num(value, 2)
    return f"{text} {unit}" if unit and text != NULL else text


def fmt_time(value: Any) -> str:
    """Unix seconds -> local date and time of the machine that renders, with its UTC offset."""
    v = _finite(value)
    if v is None:
        return NULL
    moment = datetime.fromtimestamp(v).astimezone()
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC{offset[:3]}:{offset[3:]}"


def fmt_option(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_option(item) for item in value) if value else NULL
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def shorten(text: Any, limit: int) -> str:
    """One line, at most `limit` characters, with an ellipsis when cut."""
    if text is None:
        return ""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
