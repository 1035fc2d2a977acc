"""Entry points, every command's --help, and the scripts' argument checks (about 3 s)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdss_distill import cli
from tests.conftest import ROOT


def _has_cli(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    return spec is not None and "def main(" in Path(spec.origin).read_text()


# Every `python -m` command line of the package: the subcommands, plus the QAT worker that
# export starts. A subcommand whose module has no command line yet is not listed.
CLI_MODULES = [m for m in [module for _, _, module in cli.COMMANDS.values()]
               + ["sdss_distill.export.finetune"] if _has_cli(m)]
# scripts/tune_dev.py is being folded into `experiment --dev` and is left as it is until then.
SCRIPTS = sorted(p for p in (ROOT / "scripts").glob("*.py") if p.name != "tune_dev.py")
FLAGS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction,
         argparse._VersionAction, argparse._CountAction)


class _Captured(Exception):
    def __init__(self, parser):
        self.parser = parser


def _parsers(entry) -> list[argparse.ArgumentParser]:
    """The parser a command builds (and its subcommands' parsers), caught at parse time."""
    def capture(self, *args, **kwargs):
        raise _Captured(self)

    saved = argparse.ArgumentParser.parse_known_args
    argparse.ArgumentParser.parse_known_args = capture
    try:
        entry([])
    except _Captured as c:
        top = c.parser
    else:
        raise AssertionError(f"{entry} built no argparse parser")
    finally:
        argparse.ArgumentParser.parse_known_args = saved
    found, todo = [], [top]
    while todo:
        p = todo.pop()
        found.append(p)
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                todo.extend(a.choices.values())
    return found


def _script_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _entries():
    for name in CLI_MODULES:
        yield pytest.param(name, id=name)
    for path in SCRIPTS:
        yield pytest.param(path, id=f"scripts/{path.name}")


def _hidden_defaults(entry) -> list[str]:
    """Options that take a value and have a default, but whose help text does not show it.

    On/off flags (store_true, ...) are left out: their default is "off".
    """
    missing = []
    for parser in _parsers(entry):
        for a in parser._actions:
            if not a.option_strings or isinstance(a, FLAGS) or a.default in (None, argparse.SUPPRESS):
                continue
            if "default" not in (a.help or "").lower():
                missing.append(f"{parser.prog} {'/'.join(a.option_strings)} (default {a.default!r})")
    return missing


@pytest.mark.parametrize("target", _entries())
def test_help_shows_every_default(target):
    """Each option that takes a value and has a default says so in its --help text."""
    module = _script_module(target) if isinstance(target, Path) else importlib.import_module(target)
    entry = getattr(module, "parse_args", None) or module.main
    assert _hidden_defaults(entry) == []


@pytest.mark.parametrize("target", _entries())
def test_no_parser_takes_an_abbreviated_option(target):
    """`--epoch 5` is not `--epochs 5`: every parser (subcommands too) has allow_abbrev off."""
    module = _script_module(target) if isinstance(target, Path) else importlib.import_module(target)
    entry = getattr(module, "parse_args", None) or module.main
    loose = [p.prog for p in _parsers(entry) if p.allow_abbrev]
    assert not loose, f"parsers that accept abbreviated options: {loose}"


def test_an_abbreviated_option_is_one_line_exit_2(capsys):
    from sdss_distill import train
    with pytest.raises(SystemExit) as e:
        train.parse_args(["--epoch", "5"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "unrecognized arguments: --epoch 5" in err
    assert err.count("\n") == 1


def test_the_walker_finds_hidden_defaults_in_subcommands():
    """Control for the test above: it flags an option whose help omits its default."""
    def parse(argv):
        p = argparse.ArgumentParser(prog="demo")
        p.add_argument("--k", type=int, default=2, help="shown (default: 2)")
        sub = p.add_subparsers(dest="cmd").add_parser("run")
        sub.add_argument("--n", type=int, default=3, help="how many")
        sub.add_argument("--quiet", action="store_true")
        return p.parse_args(argv)

    assert _hidden_defaults(parse) == ["demo run --n (default 3)"]


def test_python_m_sdss_distill_lists_the_subcommands():
    proc = subprocess.run([sys.executable, "-m", "sdss_distill"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for name in cli.COMMANDS:
        assert sum(line.split()[:1] == [name] for line in lines) == 1, (name, proc.stdout)


def test_cli_dispatches_to_the_module(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["edge", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "predict" in out and "bench" in out


def test_cli_passes_the_exit_code_through(capsys, tmp_path):
    assert cli.main(["edge", "predict", "--model", str(tmp_path / "none.tflite"),
                     "--input", str(tmp_path / "none.csv")]) == 2
    assert "none.tflite" in capsys.readouterr().err


def test_unknown_subcommand_lists_the_choices(capsys):
    assert cli.main(["trian"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "'trian'" in err and "train, export" in err


def test_missing_extra_names_the_pip_command(monkeypatch, capsys):
    def no_tensorflow(name):
        raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")

    monkeypatch.setattr(cli.importlib, "import_module", no_tensorflow)
    assert cli.main(["train", "--help"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "'tensorflow'" in err and "pip install '.[train]'" in err


def test_missing_subcommand_module_says_so(monkeypatch, capsys):
    def absent(name):
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(cli.importlib, "import_module", absent)
    assert cli.main(["score"]) == 2
    assert "'score' is not available in this version" in capsys.readouterr().err


# ---- scripts: from any directory, --help, arguments checked before touching the system ----

def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, **extra}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_python_scripts_help_from_another_directory(script, tmp_path):
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                          cwd=tmp_path, env=_clean_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout.lower()


def test_bench_baselines_bad_arguments_are_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_baselines.py"), "--out",
                           str(tmp_path / "b"), "--data", str(tmp_path / "missing.csv")],
                          capture_output=True, text=True, cwd=tmp_path, env=_clean_env(), timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"python scripts/bench_baselines.py: error: {tmp_path / 'missing.csv'}: no such file "
        f"(from --data); check the path, or name a packaged dataset (bright, faint, sdss)"]
    assert not (tmp_path / "b").exists()


@pytest.fixture
def stubs(tmp_path):
    """apt-get, debootstrap, dpkg-deb and pip stand-ins that record any call."""
    bin_dir, calls = tmp_path / "stub-bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name in ("apt-get", "debootstrap", "dpkg-deb", "pip", "qemu-aarch64-static"):
        stub = bin_dir / name
        stub.write_text(f"#!/bin/sh\necho {name} \"$@\" >> {calls}\n")
        stub.chmod(0o755)
    return bin_dir, calls


def _check_aarch64(args, cwd, stubs, **env):
    bin_dir, _ = stubs
    return subprocess.run(["bash", str(ROOT / "scripts" / "check_aarch64.sh"), *args],
                          capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL,
                          env=_clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                                         PYTHON=sys.executable, **env), timeout=60)


def test_check_aarch64_help(tmp_path, stubs):
    proc = _check_aarch64(["--help"], tmp_path, stubs)
    assert proc.returncode == 0
    assert "scripts/check_aarch64.sh [--yes] RUN_DIR" in proc.stdout
    assert not stubs[1].exists()


@pytest.mark.parametrize("args, message", [
    ([], "missing RUN_DIR; usage: scripts/check_aarch64.sh [--yes] RUN_DIR"),
    (["{tmp}/nope"], "RUN_DIR {tmp}/nope: no such directory"),
    (["{tmp}"], "RUN_DIR {tmp}: missing models/run.json"),
    (["--frobnicate", "{tmp}"], "unknown option --frobnicate"),
])
def test_check_aarch64_bad_arguments_install_nothing(tmp_path, stubs, args, message):
    proc = _check_aarch64([a.format(tmp=tmp_path) for a in args], tmp_path, stubs)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message.format(tmp=tmp_path) in lines[0], proc.stderr
    assert proc.stdout == ""
    assert not stubs[1].exists()


def _fake_run(run: Path, tflite: bool) -> Path:
    (run / "models").mkdir(parents=True)
    for f in ("run.json", "split.json", "student.keras", "teacher.keras"):
        (run / "models" / f).write_text("{}")
    if tflite:
        (run / "tflite").mkdir()
        (run / "tflite" / "student_int8.tflite").write_bytes(b"")
    return run


def test_check_aarch64_run_without_tflite_files(tmp_path, stubs):
    run = _fake_run(tmp_path / "run", tflite=False)
    proc = _check_aarch64([str(run)], tmp_path, stubs)
    assert proc.returncode == 2
    assert "no tflite/*.tflite files; export them first" in proc.stderr
    assert not stubs[1].exists()


def test_check_aarch64_says_what_it_installs_and_waits_for_yes(tmp_path, stubs):
    run = _fake_run(tmp_path / "run", tflite=True)
    proc = _check_aarch64([str(run)], tmp_path, stubs, ARM64_ROOT=str(tmp_path / "arm64"))
    assert proc.returncode == 2
    if os.geteuid() == 0:
        assert "debootstrap an arm64 Debian bookworm root" in proc.stderr
        assert "about 400 MB written" in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].endswith("rerun with --yes")
    else:
        assert "needs root" in proc.stderr
    assert not stubs[1].exists()
    assert not (tmp_path / "arm64").exists()


def test_check_install_help_and_bad_arguments(tmp_path):
    script = str(ROOT / "scripts" / "check_install.sh")
    ok = subprocess.run(["bash", script, "--help"], capture_output=True, text=True, cwd=tmp_path,
                        timeout=30)
    assert ok.returncode == 0 and "scripts/check_install.sh [--keep] [WORK_DIR]" in ok.stdout
    bad = subprocess.run(["bash", script, "a", "b"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=30)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "scripts/check_install.sh: error: expected at most one WORK_DIR, got 2 arguments"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", [n for n in cli.COMMANDS if n != "score"])
def test_a_bad_option_is_one_line_and_exit_2(name, capsys):
    module = importlib.import_module(cli.COMMANDS[name][2])
    with pytest.raises(SystemExit) as e:
        module.main(["--no-such-option"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2
    assert len(err) == 1 and ": error: " in err[0] and err[0].endswith("(see --help)"), err


def test_progress_in_a_log_is_one_line_per_update(capsys):
    from sdss_distill.core.cli import progress
    with progress(total=3, unit="cell", desc="sweep", mininterval=0) as bar:
        for _ in range(3):
            bar.update(1)
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("\n") >= 2 and "3/3" in err.splitlines()[-1]


def test_exit_quickly_runs_atexit_handlers_flushes_and_keeps_the_code():
    """The quick exit skips only the interpreter's teardown: atexit handlers run, buffered
    output reaches the pipe, and the exit code is the command's."""
    code = ("import atexit, sys\n"
            "from sdss_distill.core.cli import exit_quickly\n"
            "atexit.register(lambda: print('atexit ran'))\n"
            "print('buffered', end=' ')\n"
            "sys.stderr.write('to stderr')\n"
            "exit_quickly(3)\n"
            "print('never')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert proc.returncode == 3
    assert proc.stdout == "buffered atexit ran\n" and proc.stderr == "to stderr"


def test_train_as_a_program_keeps_its_exit_code_through_the_quick_exit(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sdss_distill", "train", "--seed", "x"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("python -m sdss_distill train: error: argument --seed")


@pytest.mark.parametrize("argv0, name", [
    ("/home/me/.venv/bin/sdss-distill", "sdss-distill score"),
    (str(ROOT / "sdss_distill" / "__main__.py"), "python -m sdss_distill score"),
    (str(ROOT / "sdss_distill" / "score" / "__main__.py"), "python -m sdss_distill.score"),
    ("", "python -m sdss_distill.score")])
def test_a_command_names_itself_as_the_user_started_it(monkeypatch, argv0, name):
    from sdss_distill.core.cli import program
    monkeypatch.setattr(sys, "argv", [argv0, "score"])
    assert program("score") == name


def test_threads_and_rows_are_checked_against_the_machine(monkeypatch):
    """Issue 23 case 9: LiteRT segfaulted at --threads 100000; numpy raised MemoryError."""
    from sdss_distill.core import cli as core_cli
    from sdss_distill.core.errors import InputError
    monkeypatch.setattr(core_cli.os, "cpu_count", lambda: 4)
    core_cli.check_threads("--threads", 4)
    for bad in (0, 5, 100_000):
        with pytest.raises(InputError, match=rf"--threads must be between 1 and this machine's "
                                             rf"4 CPU core\(s\), got {bad}"):
            core_cli.check_threads("--threads", bad)
    monkeypatch.setattr(core_cli, "available_memory", lambda: 2**30)
    core_cli.check_rows("--batch", 2**19)  # 512 MiB of a 1 GiB machine's half
    with pytest.raises(InputError, match=r"--batch 524,289 rows need about 0\.5 GiB, more than "
                                         r"half the 1\.0 GiB available; give at most 524,288"):
        core_cli.check_rows("--batch", 2**19 + 1)
    with pytest.raises(InputError, match="--batch must be >= 1, got 0"):
        core_cli.check_rows("--batch", 0)


def test_a_missing_run_names_the_train_command_the_user_typed(monkeypatch, capsys, tmp_path):
    """`sdss-distill export --run MISSING` suggests `sdss-distill train`, not the module path."""
    monkeypatch.setattr(sys, "argv", ["/venv/bin/sdss-distill", "export"])
    from sdss_distill.export import cli as export_cli
    assert export_cli.main(["--run", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "no such run directory; train one with sdss-distill train --out DIR" in err
    assert "sdss_distill.train" not in err  # (the prefix is fixed when export.cli is imported)
