"""Output-token counts for an answer when the server reports no usage: tiktoken offline, a local
Hugging Face tokenizer.json, else an estimate. (`--tokenizer server` is server_tokens.py's.)

Imports only config (the --tokenizer names). tiktoken and tokenizers are imported lazily (so `sse-perf --help`
stays fast) and never touch the network: tiktoken's rank files ship in `sse_perf_tool/data/`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
import re
import threading
from pathlib import Path
from typing import Any, Optional

from .config import HF_PREFIX, SERVER, TIKTOKEN_ENCODINGS

log = logging.getLogger(__name__)

ENCODINGS = TIKTOKEN_ENCODINGS

SOURCE_TOKENIZER = "tokenizer"
SOURCE_HF = "tokenizer:hf"
SOURCE_SERVER = "server"
SOURCE_ESTIMATE = "estimate"

# sha256 of the unzipped rank files (equal to the official downloads; see
# shared/data/tiktoken/README.md and tiktoken_ext/openai_public.py).
_RANK_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}

# pat_str and special tokens copied from tiktoken_ext/openai_public.py (tiktoken 0.14.0).
# Its cl100k_base()/o200k_base() functions cannot be used: they download the rank files.
_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"

_PAT_STR = {
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}

_SPECIAL_TOKENS = {
    "cl100k_base": {
        _ENDOFTEXT: 100257,
        _FIM_PREFIX: 100258,
        _FIM_MIDDLE: 100259,
        _FIM_SUFFIX: 100260,
        _ENDOFPROMPT: 100276,
    },
    "o200k_base": {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
}


class TokenizerUnavailable(RuntimeError):
    """tiktoken is not installed or a rank file is missing, corrupt or not the expected one."""


def default_rank_file(name: str) -> Path:
    """The gzipped rank file shipped in the package for encoding `name`."""
    return Path(__file__).resolve().parent / "data" / f"{name}.tiktoken.gz"


def parse_rank_file(raw: bytes, expected_sha256: str) -> dict[bytes, int]:
    """`base64-token rank` lines (tiktoken's format) -> ranks, after checking the sha256."""
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected_sha256:
        raise TokenizerUnavailable(f"rank file sha256 {digest} is not the expected {expected_sha256}")
    ranks: dict[bytes, int] = {}
    try:
        for line in raw.splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise TokenizerUnavailable(f"rank file line {line[:40]!r} unreadable: {exc}") from None
    return ranks


def load_encoding(name: str, rank_file: Optional[Path] = None) -> Any:
    """Build the tiktoken Encoding `name` from a local rank file; never uses the network.

    Takes about a second (cl100k) to two (o200k); callers should go through the cache in
    `TokenCounter`. Raises TokenizerUnavailable on any failure.
    """
    if name not in _RANK_SHA256:
        raise TokenizerUnavailable(f"unknown encoding {name!r}; known: {', '.join(ENCODINGS)}")
    try:
        import tiktoken
    except ImportError as exc:
        raise TokenizerUnavailable(f"tiktoken is not installed: {exc}") from None
    path = rank_file if rank_file is not None else default_rank_file(name)
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise TokenizerUnavailable(f"cannot read {path}: {exc}") from None
    ranks = parse_rank_file(raw, _RANK_SHA256[name])
    try:
        encoding = tiktoken.Encoding(
            name=name,
            pat_str=_PAT_STR[name],
            mergeable_ranks=ranks,
            special_tokens=_SPECIAL_TOKENS[name],
        )
    except ValueError as exc:
        raise TokenizerUnavailable(f"tiktoken rejected {name}: {exc}") from None
    # The Encoding keeps the Python dict of the 100k ranks only to be pickled; counting goes through
    # its compiled core, which has its own copy. Dropping the dict saves 13 MiB per process.
    if isinstance(getattr(encoding, "_mergeable_ranks", None), dict):
        encoding._mergeable_ranks = {}
    return encoding


# Process-wide cache: (encoding name, rank file) -> Encoding, or None after a failure so
# the failure is logged once and not retried on every request.
_cache: dict[tuple[str, str], Any] = {}
_cache_lock = threading.Lock()


def _cached_encoding(name: str, rank_file: Optional[Path]) -> Any:
    key = (name, str(rank_file) if rank_file is not None else "")
    try:
        return _cache[key]
    except KeyError:
        pass
    with _cache_lock:  # one builder; other threads wait instead of building a copy each
        if key not in _cache:
            try:
                _cache[key] = load_encoding(name, rank_file)
            except TokenizerUnavailable as exc:
                log.warning("tokenizer %s unavailable, token counts will be estimates: %s", name, exc)
                _cache[key] = None
        return _cache[key]


class TokenCounter:
    """Counts the tokens of a whole answer with a tiktoken encoding, or estimates them.

    Thread-safe. The encoding is built on first use and shared by the whole process.
    Special-token text such as `<|endoftext|>` in an answer is counted as ordinary text.
    """

    def __init__(self, encoding: str = "cl100k_base", *, rank_file: Optional[Path] = None):
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
        self.encoding = encoding
        self._rank_file = rank_file

    def preload(self) -> bool:
        """Build the encoding now (before a run starts); True when the tokenizer is usable."""
        return _cached_encoding(self.encoding, self._rank_file) is not None

    def count(self, text: str) -> tuple[int, str]:
        """(tokens, source) with source "tokenizer" or "estimate" (tokenizer unavailable)."""
        enc = _cached_encoding(self.encoding, self._rank_file)
        if enc is None:
            return estimate_tokens(text), SOURCE_ESTIMATE
        return len(enc.encode_ordinary(text)), SOURCE_TOKENIZER


# CJK Unified Ideographs Extension A, Unified Ideographs, Compatibility Ideographs,
# Hiragana, Katakana (+ phonetic extensions), Hangul syllables.
_CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uac00-\ud7a3"
_CJK_CHAR = re.compile(f"[{_CJK_RANGES}]")
# A run of word characters (letters, digits, underscore) that are not CJK.
_WORD_RUN = re.compile(f"[^\\W{_CJK_RANGES}]+")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: each CJK character is one token, and so is each run of
    other word characters (letters, digits, `_`) between whitespace, punctuation or CJK.

    Punctuation and whitespace count nothing. "Hello, world!" -> 2; "你好世界" -> 4;
    "GPU是A100" -> 3 ("GPU", "是", "A100"). Deterministic; usually low for English.
    """
    return len(_CJK_CHAR.findall(text)) + len(_WORD_RUN.findall(text))


TOKENIZE_LIMIT_CHARS = 1_000_000  # longer texts are estimated: a tokenizer on 10 MB costs seconds and 0.5 GB


def count_texts(counter, answer: str, reasoning: str) -> tuple:
    """(output_tokens, reasoning_tokens or None, token_source) of an answer and its reasoning. A
    text beyond TOKENIZE_LIMIT_CHARS is estimated (token_source `estimate`), so one huge answer
    costs bounded time and memory after its stream, never the run's."""
    if len(answer) + len(reasoning) > TOKENIZE_LIMIT_CHARS:
        reasoning_tokens = estimate_tokens(reasoning) if reasoning else None
        return estimate_tokens(answer) + (reasoning_tokens or 0), reasoning_tokens, "estimate"
    answer_tokens, source = counter.count(answer)
    reasoning_tokens = None
    if reasoning:
        reasoning_tokens, source = counter.count(reasoning)
    return answer_tokens + (reasoning_tokens or 0), reasoning_tokens, source


class HFTokenCounter:
    """Counts with a local Hugging Face `tokenizer.json` (the `tokenizers` package; offline, no hub):
    the model's own tokenizer, so the count is what the server would report. Special tokens (BOS)
    are not added: an answer's tokens are what the model generated. Thread-safe."""

    def __init__(self, path: str):
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise TokenizerUnavailable(f"--tokenizer hf: needs the tokenizers package ({exc})") from None
        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises its own Exception types for unreadable files
            raise TokenizerUnavailable(f"cannot load {path} as a tokenizer.json: {_first_line(exc)}") from None
        self.path = str(path)

    def preload(self) -> bool:
        return True

    def count(self, text: str) -> tuple[int, str]:
        if not text:
            return 0, SOURCE_HF
        try:
            ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        except TypeError:  # a lone surrogate (valid in JSON, not in UTF-8): count it as U+FFFD
            text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        return len(ids), SOURCE_HF


class DeferredCounter:
    """--tokenizer server: the tester leaves the answer to the counting stage (server_tokens.py);
    `count` is the fallback used when the server cannot count (tiktoken)."""

    deferred = True

    def __init__(self, fallback: TokenCounter):
        self.fallback = fallback

    def preload(self) -> bool:
        return self.fallback.preload()

    def count(self, text: str) -> tuple[int, str]:
        return self.fallback.count(text)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def make_token_counter(spec: str):
    """The counter for a --tokenizer value (checked by config.check_tokenizer_spec first). Raises
    TokenizerUnavailable when a tokenizer.json cannot be loaded."""
    if spec.startswith(HF_PREFIX):
        path = Path(spec[len(HF_PREFIX):]).expanduser()
        return HFTokenCounter(str(path / "tokenizer.json" if path.is_dir() else path))
    if spec == SERVER:
        return DeferredCounter(TokenCounter())
    return TokenCounter(spec)


# Model names of OpenAI's own models, whose tokenizers tiktoken is.
_OPENAI_MODEL = re.compile(r"^(?:openai/)?(?:gpt-|o\d|chatgpt|text-|davinci|babbage|ft:gpt)", re.IGNORECASE)

TIKTOKEN_ERROR_NOTE = (
    "token counts come from tiktoken {encoding}, which is OpenAI's tokenizer, not this model's: for "
    "other models they can be off by tens of percent (SmolLM2-135M on llama-cpp-python: Chinese answers "
    "counted 32-34 % low, TPOT 47-51 % high), and TPOT and tokens/s with them; use --tokenizer server "
    "(the server's own tokenizer endpoint) or --tokenizer hf:PATH/tokenizer.json")


def tiktoken_note(model: Optional[str], encoding: str = "cl100k_base") -> Optional[str]:
    """The warning for counts made by tiktoken, unless the model is one of OpenAI's (or unknown: None
    is treated as not OpenAI's, since servers tested with sse-perf rarely are)."""
    if model and _OPENAI_MODEL.match(model.strip()):
        return None
    return TIKTOKEN_ERROR_NOTE.format(encoding=encoding if encoding in ENCODINGS else "cl100k_base")
