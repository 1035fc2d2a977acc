"""Which file ships as `student_int8`: chosen on dev rows among the int8 candidates within the
size budget, never on test rows.

Candidates: PTQ with int16 activations (TFLite 16x8), PTQ with int8 activations (both after a
float32 first layer, from one calibration pass), and the QAT file when this export has one
fine-tuned from this run's student. Dev rows are the run's non-test rows (teacher-train and
student-train): the test rows are what export.json then reports, so they cannot choose. The
float student was fit on these rows, so the choice measures which quantization keeps the
student's own decisions best, not how well it generalises; the test rows say that afterwards.
"""

from __future__ import annotations

import numpy as np

from sdss_distill.edge.classifier import interpreter, logits_index

BUDGET_BYTES = 8192
"""The size budget of a shipped student file (the accuracy issue's: at most 8 KB)."""

RULE = ("highest accuracy on the dev rows (the run's non-test rows); a tie (the same number "
        "of rows right) goes to the smaller file; only files of at most 8,192 B compete, unless "
        "none fits (a wide ensemble or subclass student): then every candidate does, and the "
        "reason says the file is over the budget")


def dev_scores(files: dict[str, bytes], x: np.ndarray, y: np.ndarray,
               reference: np.ndarray) -> dict[str, dict]:
    """{candidate: size, rows right, accuracy and agreement with the float student} on `x`."""
    out = {}
    for name, content in files.items():
        interp = interpreter(content, name, 1)
        pred = _predict(interp, x, logits_index(interp)).argmax(1)
        right = int((pred == y).sum())
        out[name] = {"size_bytes": len(content), "dev_rows_right": right,
                     "dev_accuracy": right / len(y),
                     "dev_agreement": float((pred == reference.argmax(1)).mean())}
    return out


def _predict(interp, x: np.ndarray, out: int) -> np.ndarray:
    inp = interp.get_input_details()[0]["index"]
    interp.resize_tensor_input(inp, list(x.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp, np.ascontiguousarray(x, np.float32))
    interp.invoke()
    return interp.get_tensor(out)


def choose(scores: dict[str, dict], budget: int = BUDGET_BYTES) -> tuple[str, str]:
    """(the chosen candidate, the reason in one sentence) by RULE."""
    within = {k: v for k, v in scores.items() if v["size_bytes"] <= budget}
    if not scores:
        raise ValueError("no int8 candidate to choose from")
    if not within:  # a student too wide for the budget still ships; the reason says so
        best, why = choose(scores, budget=max(v["size_bytes"] for v in scores.values()))
        return best, f"{why}; no candidate is within {budget:,} B, so this file is over the budget"
    best = min(within, key=lambda k: (-within[k]["dev_rows_right"], within[k]["size_bytes"], k))
    b = within[best]
    others = [k for k in within if k != best]
    ties = [k for k in others if within[k]["dev_rows_right"] == b["dev_rows_right"]]
    why = (f"{best}: {b['dev_accuracy']:.4%} on the dev rows ({b['dev_rows_right']:,} right), "
           f"{b['size_bytes']:,} B")
    if ties:
        why += f"; as many rows right as {', '.join(ties)}, and the smallest"
    elif others:
        why += "; more rows right than " + ", ".join(
            f"{k} ({within[k]['dev_accuracy']:.4%})" for k in others)
    too_big = [k for k in scores if k not in within]
    if too_big:
        why += f"; over {budget:,} B: {', '.join(too_big)}"
    return best, why


def choice_record(scores: dict[str, dict], chosen: str, reason: str, dev_rows: int) -> dict:
    """export.json's `student_int8_choice`: the rule, every candidate's dev scores, the pick."""
    return {"rule": RULE, "budget_bytes": BUDGET_BYTES, "dev_rows": int(dev_rows),
            "candidates": scores, "chosen": chosen, "reason": reason}
