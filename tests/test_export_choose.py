"""`sdss_distill.export.choose`: which int8 file ships as student_int8 (fast, no TensorFlow)."""


from sdss_distill.export import choose


def cand(size, right, n=1000):
    return {"size_bytes": size, "dev_rows_right": right, "dev_accuracy": right / n,
            "dev_agreement": 0.99}


def test_most_dev_rows_right_wins_even_if_larger():
    name, why = choose.choose({"ptq_16x8": cand(4040, 911), "student_qat_int8": cand(3456, 910)})
    assert name == "ptq_16x8"
    assert why.startswith("ptq_16x8: 91.1000% on the dev rows (911 right), 4,040 B")
    assert "more rows right than student_qat_int8 (91.0000%)" in why


def test_a_tie_goes_to_the_smaller_file():
    name, why = choose.choose({"ptq_16x8": cand(4040, 910), "student_qat_int8": cand(3456, 910),
                               "ptq_int8": cand(3500, 905)})
    assert name == "student_qat_int8"
    assert "as many rows right as ptq_16x8, and the smallest" in why


def test_files_over_the_budget_cannot_win_and_are_named():
    name, why = choose.choose({"big": cand(9000, 999), "small": cand(4000, 900)})
    assert name == "small" and "over 8,192 B: big" in why
    name, why = choose.choose({"big": cand(9000, 999), "bigger": cand(9500, 999)})
    assert name == "big" and "no candidate is within 8,192 B, so this file is over the budget" in why


def test_the_record_states_rule_and_rows():
    scores = {"ptq_16x8": cand(4040, 911)}
    rec = choose.choice_record(scores, "ptq_16x8", "why", 1000)
    assert rec["rule"] == choose.RULE and rec["dev_rows"] == 1000
    assert rec["budget_bytes"] == 8192 and rec["candidates"] == scores
