"""--demo-mock K=V: every mock setting a user can give the embedded server, read and checked
before anything starts (config.parse_demo_mock); the mock's own MockConfig takes each one."""

from __future__ import annotations

import pytest

from sse_perf_tool.config import DEMO_MOCK_FIELDS, ConfigError, parse_demo_mock
from sse_perf_tool.mock_config import MockConfig


def test_the_dify_and_fault_settings_are_read_with_their_types():
    items = dict(parse_demo_mock("dify_mode=chatflow,message_end=none,think_tags=split,zero_usage=on,"
                                 "message_replace=off,required_inputs=city;notes,ping_interval_s=0.5,"
                                 "rate_limit_rate=0.1,retry_after_s=3"))
    assert items == {"dify_mode": "chatflow", "message_end": "none", "think_tags": "split", "zero_usage": True,
                     "message_replace": False, "required_inputs": ("city", "notes"), "ping_interval_s": 0.5,
                     "rate_limit_rate": 0.1, "retry_after_s": 3}
    MockConfig(**items)  # the mock takes every one


def test_every_key_is_a_mock_setting():
    fields = set(MockConfig.__dataclass_fields__)
    assert set(DEMO_MOCK_FIELDS) <= fields


@pytest.mark.parametrize("text,message", [
    ("dify_mode=foo", "must be one of chat, chatflow"),
    ("zero_usage=maybe", "must be on or off"),
    ("tokens=x", "must be a number"),
    ("nope=1", "--demo-mock takes"),
])
def test_a_bad_item_is_one_clear_line(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_demo_mock(text)
