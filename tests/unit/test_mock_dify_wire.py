"""The mock's Dify wire pieces that need no socket: tagged reasoning's event texts, the keep-alive
pacer's two ping rules, the one fault draw, Dify's usage object, and the app modes. Expectations
from WIRE_FORMATS.md ("Dify Service API"); over real HTTP: tests/integration/test_mock_dify.py."""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal

import pytest

from sse_perf_tool.mock_config import FAULTS, MockConfig, pick_fault
from sse_perf_tool.mock_dify import APP_MODES, DifyApp, _usage, info_body, make_dify_flavour, parameters_body
from sse_perf_tool.mock_stream import _Pacer
from sse_perf_tool.mock_wire import _Generation, _tagged_pieces, token_text

PING = b"event: ping\n\n"


def words(n: int, reasoning: bool = False) -> str:
    return "".join(token_text(i, reasoning) for i in range(n))


@pytest.mark.parametrize("reasoning_n", [0, 1, 2, 5])
@pytest.mark.parametrize("answer_n", [0, 1, 6])
@pytest.mark.parametrize("split", [False, True])
def test_tagged_pieces_are_one_per_token_and_join_to_think_reasoning_answer(reasoning_n, answer_n, split):
    pieces = _tagged_pieces(reasoning_n, answer_n, split)
    assert len(pieces) == reasoning_n + answer_n
    tagged = f"<think>{words(reasoning_n, True)}</think>" if reasoning_n else ""
    assert "".join(pieces) == tagged + words(answer_n)
    if split and reasoning_n >= 2:
        assert pieces[0] == "<thi" and pieces[1].startswith("nk>")
    if split and reasoning_n and answer_n:
        assert pieces[reasoning_n - 1].endswith("</th") and pieces[reasoning_n].startswith("ink>")


def gen(**kwargs) -> _Generation:
    base = dict(seq=1, rng=random.Random(0), body={}, prompt_tokens=10, reasoning_n=3, answer_n=4,
                finish_reason="stop", started_at=100.0, created=0)
    return _Generation(**{**base, **kwargs})


def test_tagged_reasoning_is_answer_text_and_no_reasoning_a_server_knows():
    tagged = gen(think="whole")
    assert tagged.reasoning_text() == "" and tagged.reasoning_tokens == 0
    assert tagged.answer_text() == f"<think>{words(3, True)}</think>{words(4)}"
    assert {tagged.event(k)[0] for k in range(7)} == {"answer"}
    plain = gen()
    assert plain.reasoning_text() == words(3, True) and plain.answer_text() == words(4)


def test_a_stopped_generation_counts_and_says_only_what_was_sent():
    stopped = gen(cut_at=5)
    assert stopped.completion_tokens == 5 and stopped.answer_text() == words(2)


def test_usage_seconds_are_the_generation_s_own_and_prices_decimal_strings():
    usage = _usage(gen(first_token_at=100.25), elapsed_s=1.0)
    assert usage["latency"] == 1.0 and usage["time_to_first_token"] == 0.25
    assert usage["time_to_generate"] == 0.75
    assert Decimal(usage["total_price"]) == Decimal(usage["prompt_price"]) + Decimal(usage["completion_price"])
    assert usage["total_tokens"] == 10 + 7 and usage["currency"] == "USD"
    zero = _usage(gen(zero_usage=True, first_token_at=100.25), elapsed_s=1.0)
    assert set(zero) == set(usage)
    assert all(Decimal(str(v)) == 0 for k, v in zero.items() if k != "currency")


def test_elapsed_pings_come_every_interval_and_silence_pings_only_after_quiet():
    """Chat apps: a ping every interval of elapsed time, whatever was written. Chatflow and
    workflow runs (`silence`): a ping only once the interval passed since the last write."""
    interval = 0.5
    for silence, expect_pings in ((False, True), (True, False)):
        sent: list[bytes] = []
        started = time.perf_counter() - interval  # the first interval is already over
        pacer = _Pacer(threading.Event(), started, sent.append, PING, interval, silence=silence)
        pacer.wrote()
        for _ in range(5):  # writes 10 ms apart: never interval of silence
            assert pacer.wait_until(time.perf_counter() + 0.01)
            pacer.wrote()
        assert bool(sent) is expect_pings, silence
    sent = []
    pacer = _Pacer(threading.Event(), time.perf_counter(), sent.append, PING, 0.02, silence=True)
    assert pacer.wait_until(time.perf_counter() + 0.1)
    assert sent and set(sent) == {PING}


def test_a_quiet_wait_sends_no_ping_and_owes_none_after():
    sent: list[bytes] = []
    pacer = _Pacer(threading.Event(), time.perf_counter(), sent.append, PING, 0.02, silence=True)
    assert pacer.wait_until(time.perf_counter() + 0.1, quiet=True)
    assert pacer.wait_until(time.perf_counter())
    assert sent == []


def test_a_task_stop_ends_the_wait():
    stop = threading.Event()
    stop.set()
    assert not _Pacer(threading.Event(), time.perf_counter(), task_stop=stop).wait_until(time.perf_counter() + 60)


def test_one_fault_draw_per_request_and_none_without_rates():
    rng = random.Random(5)
    state = rng.getstate()
    assert pick_fault(MockConfig(), rng) is None and rng.getstate() == state  # no draw: seeded ids unchanged
    config = MockConfig(error_rate=0.25, rate_limit_rate=0.25, stall_rate=0.5)
    drawn = [pick_fault(config, random.Random(i)) for i in range(400)]
    assert set(drawn) == {"500", "429", "stall"}
    assert [kind for kind, _ in FAULTS] == ["500", "429", "html", "stall", "reset", "error", "pause"]
    assert pick_fault(MockConfig(pause_rate=1.0), random.Random(0)) == "pause"


@pytest.mark.parametrize("bad", [dict(dify_mode="advanced"), dict(message_end="later"), dict(think_tags="on"),
                                 dict(ping_interval_s=0), dict(stall_rate=1.5), dict(retry_after_s=-1),
                                 dict(html_rate=0.5, reset_rate=0.6), dict(required_inputs=("",))])
def test_config_rejects_impossible_dify_and_fault_settings(bad):
    with pytest.raises(ValueError):
        MockConfig(**bad)


def test_required_inputs_accept_a_comma_list():
    assert MockConfig(required_inputs="topic, lang").required_inputs == ("topic", "lang")
    assert MockConfig(required_inputs="topic|lang").required_inputs == ("topic", "lang")


def test_modes_name_dify_s_app_modes_and_choose_what_chat_messages_streams():
    assert APP_MODES == {"chat": "chat", "chatflow": "advanced-chat", "agent": "agent-chat",
                         "completion": "completion", "workflow": "workflow"}
    assert info_body("chatflow")["mode"] == "advanced-chat"
    kinds = {mode: type(make_dify_flavour("dify-chat", DifyApp(mode=mode))).__name__ for mode in APP_MODES}
    assert kinds["chatflow"] != kinds["chat"] != kinds["agent"]
    assert kinds["completion"] == kinds["workflow"] == kinds["chat"]  # every path is served in any mode
    assert make_dify_flavour("dify-workflow", DifyApp()).ping_first
    assert not make_dify_flavour("dify-chat", DifyApp()).ping_first


def test_parameters_form_lists_each_required_input():
    form = parameters_body(("a", "b"))["user_input_form"]
    assert [item["text-input"]["variable"] for item in form] == ["a", "b"]
    assert all(item["text-input"]["required"] for item in form)
    assert parameters_body(())["user_input_form"] == []
