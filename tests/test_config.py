import pytest

from sdss_distill.config import Config, make_config
from sdss_distill.errors import InputError


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


@pytest.mark.parametrize("key, value, message", [
    ("alpha", 1.5, "alpha must be between 0 and 1, got 1.5"),
    ("temperature", 0, "temperature must be > 0"),
    ("split", [0.5, 0.5, 0.5], "split must be three fractions"),
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
