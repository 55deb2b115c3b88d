"""How the mock server's simulated model behaves (`MockConfig`), and the faults it can be asked for.

Standard library only; imports only mock_dify, mock_wire and mock_tokenizer from the package (the
mock shares no code with the tester it is measured against).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Optional

from . import mock_tokenizer
from .mock_dify import APP_MODES, MESSAGE_END_ORDERS
from .mock_wire import THINK_MODES

# One mechanism for every fault: a request draws once and gets at most one of these, each with
# its own fraction of requests. (kind, MockConfig field), in the order the draw tests them.
FAULTS = (
    ("500", "error_rate"),  # HTTP 500 with the vendor's error body
    ("429", "rate_limit_rate"),  # HTTP 429, Retry-After, Dify's too_many_requests body
    ("html", "html_rate"),  # HTTP 200 with an HTML page (a proxy's or a login page)
    ("stall", "stall_rate"),  # half the tokens, then stall_s of silence (no pings), then the rest
    ("reset", "reset_rate"),  # half the tokens, then a TCP reset
    ("error", "stream_error_rate"),  # half the tokens, then the flavour's error event(s), end
    ("pause", "pause_rate"),  # chatflow/workflow: all tokens, then workflow_paused and the stream closes
)
MID_STREAM_FAULTS = ("stall", "reset", "error")


@dataclass
class MockConfig:
    """How the simulated model behaves. Delays in milliseconds; every flavour uses all of it."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    ttft_ms: float = 200.0  # delay before the first generated token (reasoning or answer)
    itl_ms: float = 20.0  # delay between token events
    tokens: int = 64  # answer tokens (token-bearing events) per response; 1 token per event
    jitter_ms: float = 0.0  # uniform +-jitter on every delay (never below 0)
    reasoning_tokens: int = 0  # reasoning events before the answer (not on /completions unless tagged)
    error_rate: float = 0.0  # fraction of valid requests answered with HTTP 500
    api_key: Optional[str] = None  # when set, other keys get 401
    seed: Optional[int] = None
    record_timings: bool = False  # keep first-token send instants (MockServer.first_token_sent_at)
    # Behaviours of real servers, off by default (`like="llama-cpp-python"` turns on all of that server's):
    check_request_id: bool = False  # a non-UUID X-Request-Id gets an empty HTTP 400 (starlette-context)
    interrupt: bool = False  # a new request cuts the streams running: [DONE], no finish_reason, no last chunk
    empty_rate: float = 0.0  # fraction of answers with no text at all (finish_reason stop, 0 tokens)
    usage: bool = True  # False: OpenAI paths ignore stream_options.include_usage (llama.cpp, llama-cpp-python)
    tokenize: str = "vllm"  # tokenizer endpoint served: vllm | llama.cpp | llama-cpp-python | none
    like: Optional[str] = None  # "llama-cpp-python": all of the above as that server behaves by default
    # Dify as Dify streams it (WIRE_FORMATS.md, "Dify Service API"):
    dify_mode: str = "chat"  # what /chat-messages streams and GET /info says: chat | chatflow | agent | completion | workflow
    message_end: str = "after"  # chatflow: message_end after workflow_finished | none (Dify 1.13.x) | before
    ping_interval_s: float = 10.0  # Dify's keep-alive interval
    zero_usage: bool = False  # Dify usage with every field 0 (as annotation and moderation replies send)
    think_tags: str = "off"  # off | whole | split: reasoning_tokens as <think>...</think> in the answer text
    message_replace: bool = False  # Dify output moderation: message_replace before message_end
    required_inputs: tuple = ()  # Dify input variables every request must give (GET /parameters lists them)
    # Faults (FAULTS), each a fraction of valid requests; error_rate above is the HTTP 500 one:
    rate_limit_rate: float = 0.0
    retry_after_s: int = 1  # the 429's Retry-After header (seconds)
    html_rate: float = 0.0
    stall_rate: float = 0.0
    stall_s: float = 30.0  # how long a stall lasts
    reset_rate: float = 0.0
    stream_error_rate: float = 0.0
    pause_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.like is not None:
            if self.like != "llama-cpp-python":
                raise ValueError(f"like must be llama-cpp-python, got {self.like!r}")
            self.check_request_id = self.interrupt = True
            self.usage = False
            self.tokenize = "llama-cpp-python"
        if self.tokenize not in mock_tokenizer.KINDS:
            raise ValueError(f"tokenize must be one of {', '.join(mock_tokenizer.KINDS)}, got {self.tokenize!r}")
        if not 0.0 <= self.empty_rate <= 1.0:
            raise ValueError(f"empty_rate must be between 0 and 1, got {self.empty_rate}")
        for name in ("ttft_ms", "itl_ms", "jitter_ms", "stall_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("tokens", "reasoning_tokens", "retry_after_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        for _, name in FAULTS:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if sum(getattr(self, name) for _, name in FAULTS) > 1.0 + 1e-9:
            raise ValueError("the fault rates (" + ", ".join(name for _, name in FAULTS) + ") add up to more than 1")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {self.port}")
        choices = (("dify_mode", tuple(APP_MODES)), ("message_end", MESSAGE_END_ORDERS), ("think_tags", THINK_MODES))
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if not self.ping_interval_s > 0:
            raise ValueError(f"ping_interval_s must be > 0, got {self.ping_interval_s}")
        if isinstance(self.required_inputs, str):  # "topic,lang" (or ; | or spaces, for --demo-mock's commas)
            self.required_inputs = tuple(n for n in re.split(r"[,;|\s]+", self.required_inputs) if n)
        self.required_inputs = tuple(self.required_inputs)
        if not all(isinstance(n, str) and n for n in self.required_inputs):
            raise ValueError(f"required_inputs must be names, got {self.required_inputs!r}")


def pick_fault(config: MockConfig, rng: random.Random) -> Optional[str]:
    """The fault (FAULTS kind) this request gets, or None. Draws from rng only when some fault rate
    is set, so a seeded server without faults gives the ids it always gave."""
    rates = [(kind, getattr(config, name)) for kind, name in FAULTS]
    if not any(rate for _, rate in rates):
        return None
    draw = rng.random()
    bound = 0.0
    for kind, rate in rates:
        bound += rate
        if draw < bound:
            return kind
    return None
