import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.runs.config import Config, make_config


def test_defaults_then_toml_then_flags(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("seed = 3\nalpha = 0.2\nstudent_hidden = [8, 8]\n")
    cfg = make_config(str(toml), alpha=0.9, temperature=None)
    assert (cfg.seed, cfg.alpha, cfg.student_hidden) == (3, 0.9, (8, 8))
    assert cfg.temperature == Config().temperature


def test_unknown_key_lists_valid_keys(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("sede = 3\n")
    with pytest.raises(InputError, match=r"unknown config key\(s\) sede; valid keys: data, "):
        make_config(str(toml))


def test_the_removed_engine_key_says_it_is_gone(tmp_path):
    """One engine: a config that still chooses one is told so in one line (train: exit 2)."""
    toml = tmp_path / "run.toml"
    toml.write_text('engine = "keras"\n')
    with pytest.raises(InputError, match=r"^config key 'engine' is gone: every model trains on "
                                         r"the one JAX engine .*; delete it$"):
        make_config(str(toml))
    assert "engine" not in Config().to_dict()


@pytest.mark.parametrize("key, value, message", [
    ("alpha", 1.5, "alpha must be between 0 and 1, got 1.5"),
    ("temperature", 0, "temperature must be > 0"),
    ("split", [0.5, 0.5, 0.5], "split must be four fractions"),
    ("teacher_view", "photometric", "teacher_view must be one of physical, paper17"),
    ("seed", "x", "seed must be int, got 'x'"),
    ("epochs", 2.5, "epochs must be an integer"),
])
def test_bad_values_name_the_key(key, value, message):
    with pytest.raises(InputError, match=message):
        make_config(**{key: value})


def test_malformed_toml(tmp_path):
    toml = tmp_path / "bad.toml"
    toml.write_text("seed = = 3")
    with pytest.raises(InputError, match="bad.toml: not valid TOML"):
        make_config(str(toml))


def test_method_settings_from_toml_and_flags(tmp_path):
    from sdss_distill.runs.config import parse_method_options
    toml = tmp_path / "run.toml"
    toml.write_text('method = "crossfit"\n[methods.crossfit]\nfolds = 4\n'
                    '[methods.hints]\nweight = 0.5\n')
    cfg = make_config(str(toml), methods=parse_method_options(["crossfit.folds=3"]))
    assert cfg.method == "crossfit" and cfg.settings().folds == 3
    assert cfg.settings("hints").weight == 0.5
    assert cfg.settings("student-ensemble").widths[0] == (12, 12)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "nope"}, r"unknown method 'nope'; choose one of: offline, crossfit, online, "),
    ({"methods": {"crossfit": {"fold": 3}}},
     r"unknown setting\(s\) methods.crossfit.fold; valid: folds"),
    ({"methods": {"crossfit": {"folds": 1}}}, "methods.crossfit: folds must be between 2 and 20"),
    ({"methods": {"crossfit": {"folds": "x"}}}, "methods.crossfit.folds must be int, got 'x'"),
    ({"methods": {"offline": {"a": 1}}}, r"valid: none \(offline has no settings\)"),
    ({"soft_loss": "mse"}, "soft_loss must be one of kl, ce, got 'mse'"),
])
def test_bad_method_settings_name_them(kwargs, message):
    with pytest.raises(InputError, match=message):
        make_config(**kwargs)


def test_set_option_needs_method_dot_key():
    from sdss_distill.runs.config import parse_method_options
    with pytest.raises(InputError, match="expected METHOD.SETTING=VALUE"):
        parse_method_options(["folds=3"])
    assert parse_method_options(["cotrain.rows=student_train", "student-ensemble.widths=[[4],[8]]"]) \
        == {"cotrain": {"rows": "student_train"}, "student-ensemble": {"widths": [[4], [8]]}}


@pytest.mark.parametrize("fractions", [["0.35", "0.35", "0.1", "0.2"], ["0.4", "0.4", "0.2"]])
def test_split_flag_takes_four_fractions_or_three_without_calibration(fractions):
    from sdss_distill.train import config_from_args, parse_args
    cfg = config_from_args(parse_args(["--split", *fractions]))
    assert cfg.split == tuple(map(float, fractions))
    assert Config().split == (0.35, 0.35, 0.1, 0.2)  # the default has the calibration slice
