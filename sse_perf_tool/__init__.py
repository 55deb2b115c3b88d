"""sse-perf: a load tester for streaming LLM endpoints."""

__version__ = "0.1.0"
