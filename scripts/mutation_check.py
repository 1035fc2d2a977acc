"""Break each loss setting on purpose and show a named test failing for each mutant.

Usage:
    python scripts/mutation_check.py            # every mutant; exit 1 if one survives

Each mutant is applied in a fresh child process (a monkeypatch made before pytest collects
the tests), which then runs the tests that should catch it; a mutant is "killed" when one of
them fails. First the tests run unmutated and must pass, so a kill means the mutant, not a
broken test. Mutants:
  temperature_ignored  the JAX engine's loss built with T = 1 whatever the config says
  alpha_ignored        ... with alpha = 0.9 (the default) whatever the config says
  soft_loss_swapped    ... with kl and ce exchanged
  last_weights         early stopping keeps the last epoch's weights, not the best
  handover_temperature a Distiller hands the engine T = 1, not its soft loss's temperature
  handover_alpha       a Distiller hands the engine alpha = 0.9, not its own alpha
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOSS_TESTS = ["tests/test_jax_fit.py"]
HANDOVER_TESTS = ["tests/test_distillers.py"]
BEST_TESTS = ["tests/test_jax_fit.py::test_engine_keeps_the_best_epochs_weights_not_the_last",
              "tests/test_distill.py::test_jax_engine_is_deterministic_and_keeps_the_best_epoch"]

PATCH_LOSS = """
import dataclasses
from sdss_distill.distill import jax_fit
real = jax_fit.Loss
def mutant(*args, **kwargs):
    loss = real(*args, **kwargs)
    return dataclasses.replace(loss, {change})
jax_fit.Loss = mutant
"""
PATCH_HANDOVER = """
import dataclasses
from sdss_distill.distill import distillers
real = distillers.ViewDistiller.engine_loss
def mutant(self):
    return dataclasses.replace(real(self), {change})
distillers.ViewDistiller.engine_loss = mutant
"""
MUTANTS = {
    "none": ("", LOSS_TESTS + BEST_TESTS + HANDOVER_TESTS),
    "temperature_ignored": (PATCH_LOSS.format(change="temperature=1.0"), LOSS_TESTS),
    "alpha_ignored": (PATCH_LOSS.format(change="alpha=0.9"), LOSS_TESTS),
    "soft_loss_swapped": (PATCH_LOSS.format(
        change="kind={'kl': 'ce', 'ce': 'kl'}[loss.kind]"), LOSS_TESTS),
    "last_weights": ("""
import numpy as np
from sdss_distill.distill import jax_fit
def last(self, params):
    return [np.asarray(a[self.k]) for layer in params for a in layer]
jax_fit._Member.final_weights = last
""", BEST_TESTS),
    "handover_temperature": (PATCH_HANDOVER.format(change="temperature=1.0"), HANDOVER_TESTS),
    "handover_alpha": (PATCH_HANDOVER.format(change="alpha=0.9"), HANDOVER_TESTS),
}


def run(name: str) -> tuple[bool, str, float]:
    """(tests passed, their summary line, seconds) with mutant `name` applied."""
    patch, tests = MUTANTS[name]
    code = (f"import sys, pytest\n{patch}\n"
            f"sys.exit(pytest.main(['-q', '-x', '-p', 'no:cacheprovider', *{tests!r}]))")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    failed = [ln.split(" ")[1] for ln in lines if ln.startswith("FAILED ")]
    # a kill must be an assertion of the test, not a crash of the mutant (a TypeError, say)
    asserted = any(ln.startswith("E ") and "assert" in ln.lower() for ln in lines)
    summary = (failed[0] if failed else "") + " | " + (lines[-1] if lines else done.stderr[-200:])
    if failed and not asserted:
        summary = "CRASHED, not an assertion: " + summary
    return done.returncode == 0 or bool(failed and not asserted), summary, time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--mutants", nargs="+", choices=[m for m in MUTANTS if m != "none"],
                   default=[m for m in MUTANTS if m != "none"],
                   help="mutants to apply after the unmutated run (default: every one)")
    args = p.parse_args(argv)
    survivors = 0
    for name in ["none", *args.mutants]:
        passed, summary, seconds = run(name)
        if name == "none":
            verdict = "tests pass unmutated" if passed else "TESTS FAIL UNMUTATED"
            survivors += not passed
        else:
            verdict = "SURVIVED" if passed else "killed"  # passed: also a crash, not a kill
            survivors += passed
        print(f"{name:20s} {verdict:22s} {seconds:6.1f} s  {summary}", flush=True)
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
