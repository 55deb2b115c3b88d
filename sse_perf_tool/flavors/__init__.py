"""The wire flavours by name: `FLAVORS` and `get_flavor()`.

Imports only the flavour modules (no HTTP, no tokenizer).
"""

from __future__ import annotations

from .anthropic import AnthropicMessages
from .base import Flavor
from .dify import DifyChat, DifyCompletion, DifyWorkflow
from .ollama import OllamaChat, OllamaGenerate
from .openai import OpenAIChat, OpenAICompletions
from .responses import OpenAIResponses
from .tgi import TgiGenerate

FLAVORS: dict[str, type[Flavor]] = {
    cls.name: cls
    for cls in (DifyChat, DifyCompletion, DifyWorkflow, OpenAIChat, OpenAICompletions, AnthropicMessages, TgiGenerate,
                OpenAIResponses, OllamaChat, OllamaGenerate)
}


def get_flavor(name: str) -> Flavor:
    """A new instance of the flavour called `name`; KeyError naming the valid ones otherwise."""
    try:
        cls = FLAVORS[name]
    except KeyError:
        raise KeyError(f"unknown flavour {name!r}; valid: {', '.join(FLAVORS)}") from None
    return cls()


__all__ = ["FLAVORS", "get_flavor"]
