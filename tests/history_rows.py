"""What a run hands the history database: one request record (the keys of records.ndjson) and a
run's `run` section. Shared by tests/unit/test_history.py and tests/integration/test_history.py."""

import time


def history_record(request_id, ok=True, ttft=100.0):
    return {"request_id": request_id, "thread_id": 1, "query": "q", "dataset": None, "started_at": 1.0,
            "ok": ok, "error_kind": None if ok else "timeout", "ttft_ms": ttft, "itl_ms": [1.0, 2.5],
            "output_tokens": 3, "warmup": False, "level": None}


def run_section(model="m"):
    return {"started_at": time.time(), "api": "openai-chat", "base_url": "http://127.0.0.1:1/v1",
            "model_name": model, "threads": 4, "load": {"model": "closed"}, "config": {"api_key": "app-…9f3a"}}
