"""--demo: the embedded mock server a run is aimed at. Its --demo-mock options are checked with the
other inputs (before anything is sent), and it is started on a free loopback port before the run.
"""

from __future__ import annotations

from dataclasses import replace

from .config import ConfigError, RunConfig
from .console import say
from .i18n import LANGS, table


def check_demo_mock(cfg: RunConfig) -> None:
    """Raise ConfigError (exit 2) when the --demo-mock options are not a valid mock configuration."""
    if not cfg.demo_mock:
        return
    from .mock_server import MockConfig

    try:
        MockConfig(**dict(cfg.demo_mock))
    except ValueError as exc:
        raise ConfigError(f"--demo-mock: {exc}") from None


def start_demo_mock(cfg: RunConfig, out):
    """Start the mock server and say where it is; returns (server, the config aimed at it). The
    caller stops the server when the run is over."""
    from .mock_server import MockConfig, MockServer

    mock_config = MockConfig(host="127.0.0.1", port=0, **dict(cfg.demo_mock))
    mock = MockServer(mock_config).start()
    t = table("TERMINAL", cfg.lang if cfg.lang in LANGS else "en")
    say(t["demo"].format(url=mock.base_url, ttft=f"{mock_config.ttft_ms:g}", itl=f"{mock_config.itl_ms:g}",
                         tokens=mock_config.tokens), out)
    return mock, replace(cfg, base_url=mock.base_url)
