"""One prompt of the workload (what the providers hand out and the flavours put into a body).
Imports nothing from the package."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Query:
    """One prompt from the workload. `inputs` are Dify app inputs; `max_tokens` overrides the run's."""

    text: str
    inputs: dict = field(default_factory=dict)
    dataset: Optional[str] = None
    max_tokens: Optional[int] = None
