"""Prompts by length (`--input-tokens N[:SD]`), with shared prefixes (`--prefix-tokens K
--prefix-groups G`: prefix-cache benchmarks), and answers by length (`--output-tokens M[:SD]`), as
the field's benchmarks send them (vLLM's random dataset): each prompt is real words cut to its
drawn number of tokens with the offline tokenizer (tiktoken, cl100k_base), each request asks for
its drawn number of output tokens (max_tokens, and where the flavour has it the server's option
to ignore the end of sequence: vLLM's min_tokens and ignore_eos). Lengths are drawn from a normal
spread around N (SD 0: all N), seeded with --seed, at least 1. A pool of POOL prompts is built
before anything is sent and handed out in turn. Imports tokens (the encoding) and the workload's
Query.
"""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import replace
from typing import Optional

from .query import Query
from .tokens import _cached_encoding

POOL = 256  # prompts built before the run (then handed out in turn): bounded time and memory
ENCODING = "cl100k_base"
# plain English words (1 token each, or nearly, in cl100k_base): a prompt reads as text, not noise
WORDS = tuple("""the of and to in is that it for on with as was at by be this are from or have an they which
one you were all we her she there would their will when who him been has more if no out so said what up its
about into than them can only other new some could time these two may then do first any my now such like our
over man me even most made after also did many before must through back years where much your way well down
should because each just those people how too little state good very make world still own see men work long
get here between both life being under never day same another know while last might us great old year off come
since against go came right used take three states himself few house use during without again place american
around however home small found thought went say part once general high upon school every does got united left
number course war until always away something fact though water less public put think almost hand enough far
took head yet government system better set told nothing night end why called didn eyes find going look asked
later knew point next city business give group toward young days let room president side social given present
several order national possible rather second face per among form important often things looked early white
john case become large big need four within felt children along saw best church ever least power development
light thing seemed family interest want members mind country area others done turned although open god service
problem certain kind different thus began door help means sense whole matter perhaps itself york times law
human line above name example action company hands local show whether five history gave today either act feet
across taken past quite anything seen having death experience body word half really week field money words""".split())


def _draw(rng: random.Random, mean: int, sd: float) -> int:
    return max(1, round(rng.gauss(mean, sd))) if sd else mean


def prompts_by_length(mean: int, sd: float, seed: int, pool: int = POOL) -> list[tuple[str, int]]:
    """(prompt, its tokens) x pool: words cut at the drawn number of tokens."""
    encoding = _cached_encoding(ENCODING, None)
    out = []
    for i in range(pool):
        rng = random.Random(f"{seed}:input:{i}")
        n = _draw(rng, mean, sd)
        words = [rng.choice(WORDS) for _ in range(n + 8)]
        if encoding is None:  # no tokenizer: a word is about a token here
            out.append((" ".join(words[:n]), n))
            continue
        ids = encoding.encode_ordinary(" ".join(words))[:n]
        out.append((encoding.decode(ids), len(ids)))
    return out


class ByLength:
    """The run's queries with lengths: synthetic prompts (or the given queries, when only the
    output length is set) and a drawn max_tokens per request. Thread-safe; `next()` as the
    Runner asks for queries. `asked()` is what the summary records."""

    def __init__(self, inner, input_len: Optional[tuple], output_len: Optional[tuple], seed: int,
                 prefix: Optional[tuple] = None):
        self.inner, self.input_len, self.output_len, self.seed, self.prefix = inner, input_len, output_len, seed, prefix
        self._prompts = prompts_by_length(input_len[0], input_len[1], seed) if input_len else None
        # --prefix-tokens K --prefix-groups G: G prefixes of K tokens, each request's prompt opens with one
        # (in turn), its group the request's dataset: prefix-1 .. prefix-G
        self._prefixes = [text for text, _ in prompts_by_length(prefix[0], 0, f"{seed}:prefix", prefix[1])] \
            if prefix else None
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def next(self) -> Query:
        with self._lock:
            i = next(self._counter)
        if self._prompts is not None:
            query = Query(text=self._prompts[i % len(self._prompts)][0])
        else:
            query = self.inner.next()
        if self._prefixes is not None:
            group = i % len(self._prefixes)
            query = replace(query, text=self._prefixes[group] + " " + query.text, dataset=f"prefix-{group + 1}")
        if self.output_len is not None:
            query = replace(query, max_tokens=_draw(random.Random(f"{self.seed}:output:{i}"), *self.output_len))
        return query

    def asked(self) -> dict:
        out = {}
        if self.input_len is not None:
            sizes = [n for _, n in self._prompts]
            out["input_tokens"] = {"asked_mean": self.input_len[0], "asked_sd": self.input_len[1],
                                   "sent_mean": sum(sizes) / len(sizes), "sent_min": min(sizes), "sent_max": max(sizes)}
        if self.output_len is not None:
            out["output_tokens"] = {"asked_mean": self.output_len[0], "asked_sd": self.output_len[1]}
        if self.prefix is not None:
            out["prefix"] = {"tokens": self.prefix[0], "groups": self.prefix[1]}
        return out


class FromTrace:
    """The queries of a --trace, in its order: each a prompt of the entry's input_length (built from
    its hash_ids blocks, so entries that share a block share that prefix) asking for its
    output_length. Blocks are cached (at most BLOCKS_KEPT). Thread-safe."""

    BLOCKS_KEPT = 4096

    def __init__(self, entries: list, seed: int, block_tokens: int = 512):
        self.entries, self.seed, self.block_tokens = entries, seed, block_tokens
        self._encoding = _cached_encoding(ENCODING, None)
        self._blocks: dict = {}
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def _block(self, block_id) -> list:
        ids = self._blocks.get(block_id)
        if ids is None:
            rng = random.Random(f"{self.seed}:block:{block_id}")
            text = " ".join(rng.choice(WORDS) for _ in range(self.block_tokens + 8))
            ids = self._encoding.encode_ordinary(text)[:self.block_tokens] if self._encoding else text.split()
            if len(self._blocks) >= self.BLOCKS_KEPT:
                self._blocks.pop(next(iter(self._blocks)))
            self._blocks[block_id] = ids
        return ids

    def next(self) -> Query:
        with self._lock:
            i = next(self._counter)
            entry = self.entries[i % len(self.entries)]
            blocks = list(entry.hash_ids) or [f"request-{i}-{k}" for k in range(-(-entry.input_length // self.block_tokens))]
            ids: list = []
            k = 0
            while len(ids) < entry.input_length:  # more blocks than the trace names: this request's own
                ids += self._block(blocks[k] if k < len(blocks) else f"request-{i}-{k}")
                k += 1
            ids = ids[:entry.input_length]
            text = self._encoding.decode(ids) if self._encoding else " ".join(ids)
        return Query(text=text, max_tokens=entry.output_length)

    def asked(self) -> dict:
        n = len(self.entries)
        return {"trace": {"requests": n, "input_tokens_mean": sum(e.input_length for e in self.entries) / n,
                          "output_tokens_mean": sum(e.output_length for e in self.entries) / n,
                          "span_s": self.entries[-1].offset_s}}
