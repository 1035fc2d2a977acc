"""Batch-1 latency and batched throughput of a .tflite file, on rows drawn inside its card's
training domain (numpy + ai_edge_litert only): the raw LiteRT calls (`benchmark`), and
`EdgeClassifier.predict` against them in one run (`against_raw`)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sdss_distill.edge import verify
from sdss_distill.edge.classifier import EdgeClassifier, card_path, interpreter, read_card


def sample_rows(card: dict, n: int, seed: int = 0) -> np.ndarray:
    """Synthetic rows inside the card's column ranges (for timing only)."""
    rng = np.random.default_rng(seed)
    cols = card["input"]["columns"]
    ranges = [card.get("domain", {}).get("columns", {}).get(c, (15.0, 22.0)) for c in cols]
    return np.stack([rng.uniform(lo, hi, n) for lo, hi in ranges], axis=1).astype(np.float32)


def benchmark(model, x: np.ndarray | None = None, *, threads: int = 1, invokes: int = 10_000,
              batch: int = 1024, warmup: int = 500) -> dict:
    """Batch-1 latency (median, p99 over `invokes` calls) and batched rows/s with LiteRT."""
    model = Path(model)
    interp = interpreter(model.read_bytes(), model, threads)
    if x is None:
        card = read_card(model)
        verify.check_card(card, card_path(model), int(interp.get_input_details()[0]["shape"][-1]))
        x = sample_rows(card, max(batch, 1))
    x = np.ascontiguousarray(x, dtype=np.float32)
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    interp.resize_tensor_input(inp, [1, x.shape[1]])
    interp.allocate_tensors()
    rows = [x[k % len(x)][None] for k in range(min(len(x), 256))]
    times = np.empty(invokes, np.int64)
    for k in range(warmup + invokes):
        start = time.perf_counter_ns()
        interp.set_tensor(inp, rows[k % len(rows)])
        interp.invoke()
        interp.get_tensor(out)
        if k >= warmup:
            times[k - warmup] = time.perf_counter_ns() - start
    xb = np.resize(x, (batch, x.shape[1]))
    interp.resize_tensor_input(inp, list(xb.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp, xb)
    interp.invoke()
    reps, start = 0, time.perf_counter()
    while reps < 20 or time.perf_counter() - start < 0.5:
        interp.set_tensor(inp, xb)
        interp.invoke()
        interp.get_tensor(out)
        reps += 1
    elapsed = time.perf_counter() - start
    return {"latency_us_median": float(np.median(times) / 1e3),
            "latency_us_p99": float(np.percentile(times, 99) / 1e3),
            "throughput_rows_per_s": float(reps * batch / elapsed),
            "invokes": invokes, "batch": batch, "threads": threads}


def against_raw(model, *, threads: int = 1, invokes: int = 10_000, batch: int = 1024,
                warmup: int = 500) -> dict:
    """`EdgeClassifier.predict` (checks, domain flag, probabilities) against the raw LiteRT
    calls on the same file and rows, alternated call by call so both see the same machine
    load: one row (median us, and predict / raw) and a batch (rows/s, and predict / raw)."""
    clf = EdgeClassifier(model, num_threads=threads)
    raw = interpreter(Path(model).read_bytes(), Path(model), threads)
    inp, out = raw.get_input_details()[0]["index"], raw.get_output_details()[0]["index"]
    x = sample_rows(clf.card, max(batch, 256)).astype(np.float64)
    rows32 = [x[k][None].astype(np.float32) for k in range(256)]
    rows64 = [x[k][None] for k in range(256)]  # a caller's float64 row: predict converts it

    def call_raw(x32):
        raw.set_tensor(inp, x32)
        raw.invoke()
        return raw.get_tensor(out)

    one = _alternate(lambda k: call_raw(rows32[k % 256]), lambda k: clf.predict(rows64[k % 256]),
                     warmup + invokes, skip=warmup)
    raw.resize_tensor_input(inp, [batch, x.shape[1]])
    raw.allocate_tensors()
    xb64 = np.resize(x, (batch, x.shape[1]))
    xb32 = xb64.astype(np.float32)
    reps = max(20, invokes // batch)
    many = _alternate(lambda k: call_raw(xb32), lambda k: clf.predict(xb64), reps + 2, skip=2)
    one_raw, one_predict = (float(np.median(t) / 1e3) for t in one)
    rate_raw, rate_predict = (batch / (float(np.median(t)) / 1e9) for t in many)
    return {"one_row_us": {"raw": one_raw, "predict": one_predict},
            "one_row_ratio": one_predict / one_raw,
            "batch_rows_per_s": {"raw": rate_raw, "predict": rate_predict},
            "batch_rate_ratio": rate_predict / rate_raw,
            "invokes": invokes, "batch": batch, "batch_reps": reps, "threads": threads}


def _alternate(first, second, n: int, *, skip: int) -> tuple[np.ndarray, np.ndarray]:
    """Nanoseconds of n calls of each of two functions, one after the other (the first
    `skip` pairs are warm-up, not kept)."""
    times = np.empty((2, n), np.int64)
    clock = time.perf_counter_ns
    for k in range(n):
        start = clock()
        first(k)
        mid = clock()
        second(k)
        times[0, k], times[1, k] = mid - start, clock() - mid
    return times[0, skip:], times[1, skip:]
