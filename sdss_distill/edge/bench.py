"""Batch-1 latency and batched throughput of a .tflite file, on rows drawn inside its card's
training domain (numpy + ai_edge_litert only)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sdss_distill.edge import verify
from sdss_distill.edge.classifier import card_path, interpreter, read_card


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
