"""errors.run_cli: the exit-code contract (0, 2 one line, 130/143) and its --debug escape."""

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sdss_distill.core.errors import InputError, run_cli

ROOT = Path(__file__).resolve().parents[1]


def test_input_error_is_one_line_exit_2(capsys):
    def body():
        raise InputError("data.csv: no such file")
    assert run_cli(body, "prog") == 2
    assert capsys.readouterr().err == "prog: error: data.csv: no such file\n"
    with pytest.raises(InputError):
        run_cli(body, "prog", debug=True)


def test_os_error_naming_a_file_is_one_line(tmp_path, capsys):
    def body():
        (tmp_path / "missing" / "x").write_text("x")
    assert run_cli(body, "prog") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"prog: error: {tmp_path}/missing/x: No such file")


def test_other_errors_keep_their_traceback():
    def body():
        raise OSError("no file named")  # nothing to name: a bug, not an input error
    with pytest.raises(OSError):
        run_cli(body, "prog")


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "terminated"),
                                              (signal.SIGINT, 130, "interrupted")])
def test_signals_unwind_with_cleanup(tmp_path, sig, code, word):
    marker = tmp_path / "temp"
    script = textwrap.dedent(f"""
        import signal, sys, time
        from pathlib import Path
        from sdss_distill.core.errors import run_cli
        # as in a foreground shell: a background job (CI's, say) starts with SIGINT ignored
        signal.signal(signal.SIGINT, signal.default_int_handler)
        def body():
            temp = Path({str(marker)!r})
            temp.write_text("x")
            try:
                print("ready", flush=True)
                time.sleep(30)
            finally:
                temp.unlink()
            return 0
        sys.exit(run_cli(body, "prog"))
        """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == code
    assert proc.stderr.read() == f"prog: {word}\n"
    assert not marker.exists()
