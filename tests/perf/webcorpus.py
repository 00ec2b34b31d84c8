"""A web-like text corpus with planted near duplicates, for the near-dedup benchmarks.

Documents have log-normal word counts (median 250, mean about 450, clipped to 20-20,000
words, like web text), paragraphs of 20-120 words, sentences with capitals and full stops,
and words drawn from a Zipf-Mandelbrot law over 20,000 pseudo-words, so common n-grams recur
across unrelated documents. 10% of the documents are near copies of others, made by the
edits of copied web text: word substitutions, insertions and deletions of one to three
words, and paragraph moves, as many as keep the word 5-gram Jaccard similarity with the
source at or above a target (0.5-0.95). Punctuation and case are rendered, never part of a
token, so the recorded Jaccard is exact for any tool that lower-cases and splits on
non-letters.

Each document is drawn from its own seed, so a corpus of a million documents is written
file by file without holding it in memory.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from weft.demo.corpus import vocabulary

JACCARDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
NGRAM = 5
VOCAB = 20_000
MEDIAN_WORDS, SIGMA, MIN_WORDS, MAX_WORDS = 250, 1.1, 20, 20_000
_MIX = np.uint64(0x9E3779B97F4A7C15)


class Words:
    """The vocabulary, its Zipf-Mandelbrot CDF and every word's four renderings
    (plain, capitalised, with a full stop, both), indexed by 2 * capital + stop."""

    def __init__(self, size: int = VOCAB) -> None:
        words = vocabulary(size, seed=11)
        weights = 1.0 / (np.arange(size) + 2.7)
        self.cdf = np.cumsum(weights) / weights.sum()
        forms = [words, [w + "." for w in words], [w.capitalize() for w in words]]
        forms.append([w.capitalize() + "." for w in words])
        self.forms = np.array(forms, dtype=object)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n token codes: word id * 2 + (1 if a sentence ends after it)."""
        ids = np.minimum(np.searchsorted(self.cdf, rng.random(n)), len(self.cdf) - 1)
        stops = rng.random(n) < 1 / 14
        return ids.astype(np.int64) * 2 + stops

    def render(self, paragraphs: list[np.ndarray]) -> str:
        paragraphs = [p for p in paragraphs if len(p)]
        codes = np.concatenate(paragraphs)
        stop = codes & 1
        capital = np.empty_like(stop)
        capital[0], capital[1:] = 1, stop[:-1]
        ends = np.cumsum([len(p) for p in paragraphs]).tolist()
        capital[[0, *ends[:-1]]] = 1  # a paragraph starts a sentence
        tokens = self.forms[capital * 2 + stop, codes >> 1].tolist()
        starts = [0, *ends[:-1]]
        return "\n\n".join(" ".join(tokens[a:b]) for a, b in zip(starts, ends, strict=True))


def _document(words: Words, seed: int, index: int) -> list[np.ndarray]:
    """Document `index` of the corpus `seed` as paragraphs of token codes."""
    rng = np.random.default_rng([seed, index])
    n = int(np.clip(round(rng.lognormal(np.log(MEDIAN_WORDS), SIGMA)), MIN_WORDS, MAX_WORDS))
    codes = words.draw(rng, n)
    cuts, at = [], 0
    while n - at > 120:
        at += int(rng.integers(20, 121))
        cuts.append(at)
    return np.split(codes, cuts)


def _shingles(paragraphs: list[np.ndarray]) -> np.ndarray:
    """The distinct hashes of the word 5-grams (case and punctuation left out)."""
    ids = np.concatenate(paragraphs).astype(np.uint64) >> np.uint64(1)
    if len(ids) < NGRAM:
        return np.unique(ids[:1] * _MIX + np.uint64(len(ids)))
    h = np.zeros(len(ids) - NGRAM + 1, np.uint64)
    for k in range(NGRAM):
        h = h * _MIX + ids[k : len(ids) - NGRAM + 1 + k] + np.uint64(1)
    return np.unique(h)


def jaccard(a: list[np.ndarray] | np.ndarray, b: list[np.ndarray]) -> float:
    """Word 5-gram Jaccard similarity of two documents (`a` may be its shingles already)."""
    sa = a if isinstance(a, np.ndarray) else _shingles(a)
    sb = _shingles(b)
    common = len(np.intersect1d(sa, sb, assume_unique=True))
    return common / (len(sa) + len(sb) - common)


def _edit(paragraphs: list[np.ndarray], ops: list[tuple[Any, ...]]) -> list[np.ndarray]:
    """Apply edit ops (drawn by `_ops`) to a copy of the paragraphs."""
    out = list(paragraphs)
    for kind, p, at, size, drawn in ops:
        p %= len(out)
        para = out[p]
        where = at % (len(para) + 1)
        if kind == 0 and len(para):  # substitute a word by another
            para, where = para.copy(), where % len(para)
            new = drawn[0]
            para[where] = new if new >> 1 != para[where] >> 1 else (new + 2) % (2 * VOCAB)
        elif kind == 1:  # insert one to three words
            para = np.insert(para, where, drawn[:size])
        elif kind == 2 and len(para) > size:  # delete one to three words
            start = where % (len(para) - size + 1)
            para = np.delete(para, np.arange(start, start + size))
        elif kind == 3 and len(out) > 1:  # move the paragraph elsewhere
            del out[p]
            out.insert(at % (len(out) + 1), para)
            continue
        out[p] = para
    return out


def _ops(rng: np.random.Generator, n: int, words: Words) -> list[tuple[Any, ...]]:
    """n edit ops: 45% substitutions, 20% insertions, 20% deletions, 15% paragraph moves;
    the first a substitution, so that one op always changes the text."""
    kinds = rng.choice(4, size=n, p=[0.45, 0.2, 0.2, 0.15])
    kinds[0] = 0
    values = rng.integers(0, 2**31, size=(n, 2)).tolist()
    sizes = rng.integers(1, 4, size=n).tolist()
    drawn = words.draw(rng, 3 * n).reshape(n, 3)
    return [
        (k, v[0], v[1], s, d)
        for k, v, s, d in zip(kinds.tolist(), values, sizes, drawn, strict=True)
    ]


def near_copy(
    paragraphs: list[np.ndarray], target: float, words: Words, rng: np.random.Generator
) -> tuple[list[np.ndarray], float]:
    """As many edits as keep the Jaccard similarity at `target` or above (at least one, so
    the copy differs): a binary search over a drawn sequence of edits. Returns the copy and
    its exact Jaccard similarity with the source."""
    size = sum(len(p) for p in paragraphs) - NGRAM + 1
    guess = max(1, round(size * (1 - target) / (1 + target) / 5))
    ops = _ops(rng, 3 * guess + 3, words)
    lo, hi = 1, len(ops)  # lo: known to reach target (or the minimum), hi: upper bound
    source = _shingles(paragraphs)
    best = _edit(paragraphs, ops[:1])
    best_j = jaccard(source, best)
    if best_j >= target:
        while lo < hi:
            mid = (lo + hi + 1) // 2
            trial = _edit(paragraphs, ops[:mid])
            j = jaccard(source, trial)
            if j >= target:
                lo, best, best_j = mid, trial, j
            else:
                hi = mid - 1
    return best, best_j


def write(
    folder: Path, documents: int, files: int, seed: int = 0, processes: int | None = None
) -> list[tuple[str, str, float]]:
    """JSONL files of {"id", "text"}: `documents` in all, 10% near copies of others at the
    JACCARDS levels, shuffled over the files, written by `processes` (every core) at once.
    Returns the planted (source id, copy id, exact Jaccard)."""
    rng = np.random.default_rng([seed, 2**32])
    copies = documents // 10
    originals = documents - copies
    sources = rng.choice(originals, size=copies, replace=False)
    order = rng.permutation(documents)  # entry i < originals: an original, else a copy
    folder.mkdir(parents=True)
    jobs = [(folder / f"docs-{f:04d}.jsonl", order[f::files]) for f in range(files)]
    work = partial(_write_file, originals=originals, sources=sources, seed=seed)
    processes = min(processes or os.cpu_count() or 1, files)
    if processes == 1:
        return [p for job in jobs for p in work(job)]
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
        return [p for planted in pool.map(work, jobs) for p in planted]


_WORDS: Words | None = None


def _write_file(
    job: tuple[Path, np.ndarray], originals: int, sources: np.ndarray, seed: int
) -> list[tuple[str, str, float]]:
    global _WORDS
    _WORDS = _WORDS or Words()
    path, entries = job
    planted: list[tuple[str, str, float]] = []
    with open(path, "w") as out:
        for line in _lines(entries, originals, sources, seed, _WORDS, planted):
            out.write(line)
    return planted


def _lines(
    entries: np.ndarray,
    originals: int,
    sources: np.ndarray,
    seed: int,
    words: Words,
    planted: list[tuple[str, str, float]],
) -> Iterator[str]:
    for entry in entries.tolist():
        if entry < originals:
            doc_id, paragraphs = f"w{entry:08d}", _document(words, seed, entry)
        else:
            j = entry - originals
            src = int(sources[j])
            rng = np.random.default_rng([seed, 2**33, j])
            paragraphs, similarity = near_copy(
                _document(words, seed, src), JACCARDS[j % len(JACCARDS)], words, rng
            )
            doc_id = f"c{j:08d}"
            planted.append((f"w{src:08d}", doc_id, similarity))
        yield json.dumps({"id": doc_id, "text": words.render(paragraphs)}) + "\n"
