"""Choose defaults without touching test rows: train on a dev split of the NON-test rows.

For each seed, the default split's test rows are set aside untouched; the remaining rows are
split again 40/40/20 into dev teacher-train / dev student-train / dev-validation, and every
candidate setting is scored on dev-validation only.

    python scripts/tune_dev.py --data ../shared/data/sdss_dr14_skyserver_10k.csv --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import itertools
import json

import numpy as np

from sdss_distill import distill
from sdss_distill.data import clean, features, labels, load_table, split, validation_slice
from sdss_distill.models import build_mlp
from sdss_distill.schema import STUDENT_VIEW, get_view


def dev_rows(df, seed):
    outer = split(df, seed=seed)
    return split(df.loc[np.concatenate([outer.teacher_train, outer.student_train])], seed=seed)


def arrays(df, rows, view, seed, val=0.15):
    fit_rows, val_rows = validation_slice(df, rows, val, seed)
    return [(features(df.loc[r], view), labels(df.loc[r])) for r in (fit_rows, val_rows)]


def main():
    import keras
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--part", choices=["teacher", "student"], default="student")
    args = p.parse_args()
    tv, sv = get_view("physical"), get_view(STUDENT_VIEW)
    df, _ = clean(load_table(args.data), tv)
    results = []
    for seed in args.seeds:
        dev = dev_rows(df, seed)
        (xt, yt), vt = arrays(df, dev.teacher_train, tv, seed)
        x_dev_t, y_dev = features(df.loc[dev.test], tv), labels(df.loc[dev.test])
        x_dev_s = features(df.loc[dev.test], sv)
        teachers = ([((128, 128, 64, 32), 0.1, 3e-3, 128), ((128, 128, 64, 32), 0.0, 1e-2, 256),
                     ((256, 256, 128, 64), 0.1, 3e-3, 128), ((128, 128, 64, 32), 0.1, 1e-2, 256)]
                    if args.part == "teacher" else [((128, 128, 64, 32), 0.1, 3e-3, 128)])
        for hidden, drop, lr, bs in teachers:
            keras.utils.set_random_seed(seed)
            teacher = build_mlp(tv, hidden, xt, name="teacher", dropout=drop)
            distill.train_teacher(teacher, xt, yt, vt, learning_rate=lr, epochs=300,
                                  batch_size=bs, patience=20)
            acc = (teacher.predict(x_dev_t, verbose=0).argmax(1) == y_dev).mean()
            r = dict(seed=seed, model="teacher", hidden=hidden, dropout=drop, lr=lr, bs=bs, acc=acc)
            print(r, flush=True)
            results.append(r)
        if args.part == "teacher":
            continue
        (xs, ys), (xs_val, ys_val) = arrays(df, dev.student_train, sv, seed)
        (xs_t, _), (xs_val_t, _) = arrays(df, dev.student_train, tv, seed)
        soft, soft_val = distill.soft_targets(teacher, xs_t), distill.soft_targets(teacher, xs_val_t)
        grid = [(0.0, 1.0)] + list(itertools.product([0.5, 0.7, 0.9], [2.0, 4.0]))
        for (alpha, temp), lr, bs in itertools.product(grid, [3e-3, 1e-2], [128]):
            keras.utils.set_random_seed(seed)
            student = build_mlp(sv, (24, 24), xs, name="student")
            distill.distil_student(teacher, student, xs, ys, soft, (xs_val, ys_val, soft_val),
                                   temperature=temp, alpha=alpha, learning_rate=lr, epochs=400,
                                   batch_size=bs, patience=20)
            acc = (student.predict(x_dev_s, verbose=0).argmax(1) == y_dev).mean()
            r = dict(seed=seed, model="student", alpha=alpha, T=temp, lr=lr, bs=bs, acc=float(acc))
            print(r, flush=True)
            results.append(r)
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
