"""Issue 15, case 6: `data fetch` against a misbehaving server on 127.0.0.1 (http.server in a
thread): redirect loops, lying Content-Encoding, huge and gzip-bomb replies, a 1-byte/s
server, a server ignoring TOP, and --out naming a directory. Each is one line, no traceback,
bounded in time and memory."""

from __future__ import annotations

import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sdss_distill.data import skyserver
from sdss_distill.data.cli import main

CANNED = Path(__file__).parent / "data" / "skyserver"
HEAD = "\n".join((CANNED / "rows.csv").read_text().splitlines()[:2]) + "\n"
ROWS = (CANNED / "rows.csv").read_text().splitlines()[2:]


class Hostile:
    """A server whose every reply is made by `behave(handler)`; counts bytes it sent."""

    def __init__(self, behave):
        self.behave, self.requests, self.sent = behave, 0, 0
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hostile.requests += 1
                try:
                    hostile.behave(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def send(self, data: bytes):
                self.wfile.write(data)
                hostile.sent += len(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _fetch(url, out, *args):
    return main(["fetch", "--base-url", url, "--out", str(out), "--quiet", "--backoff", "0",
                 *args])


def _one_line(capsys, message):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and len(lines[0]) <= 300, err
    assert message in lines[0], lines[0]


def redirect_loop(h):
    h.send_response(302)
    h.send_header("Location", h.path)
    h.send_header("Content-Length", "0")
    h.end_headers()


def lying_gzip(h):
    body = (HEAD + "\n".join(ROWS[:5]) + "\n").encode()
    h.send_response(200)
    h.send_header("Content-Encoding", "gzip")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.send(body)


def endless(h):
    h.send_response(200)
    h.end_headers()  # no Content-Length: the reply ends when the connection does
    h.send(HEAD.encode())
    line = (ROWS[0] + "\n").encode() * 4096
    for _ in range(2048):  # up to ~1.8 GB if nobody stops reading
        h.send(line)


def _bomb(size_mb: int = 256) -> bytes:
    """gzip of HEAD + size_mb MiB of '0' (about 250 KB), built in 1 MiB steps."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [z.compress(HEAD.encode())]
    block = b"0" * (1 << 20)
    out += [z.compress(block) for _ in range(size_mb)]
    return b"".join(out) + z.flush()


BOMB = _bomb()


def gzip_bomb(h):
    body = BOMB
    h.send_response(200)
    h.send_header("Content-Encoding", "gzip")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.send(body)


def trickle(h):
    body = (HEAD + "\n".join(ROWS[:5]) + "\n").encode()
    h.send_response(200)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    for k in range(len(body)):
        h.send(body[k:k + 1])
        h.wfile.flush()
        time.sleep(0.5)


def ignores_top(h):
    body = (HEAD + "\n".join(ROWS[:12]) + "\n").encode()
    h.send_response(200)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.send(body)


@pytest.mark.parametrize("behave, args, message", [
    (redirect_loop, [], "redirected more than 5 times"),
    (lying_gzip, ["--retries", "1"], "undecodable reply (gzip declared"),
    (ignores_top, [], "12 rows for a query of TOP 10; the server did not run the expected query"),
])
def test_misbehaving_server_is_one_line_exit_1(tmp_path, capsys, behave, args, message):
    with Hostile(behave) as server:
        assert _fetch(server.url, tmp_path / "sky.parquet", "--rows", "10", *args) == 1
    _one_line(capsys, message)
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["sky.parquet.partial"])
    assert not (tmp_path / "sky.parquet").exists()


@pytest.mark.parametrize("behave", [endless, gzip_bomb])
def test_reply_size_is_capped_after_decompression(tmp_path, capsys, behave):
    """A reply far larger than --rows 100 can need is cut off at the cap (1 MiB + 2 KiB/row),
    counted after decompression: neither the bytes sent nor the memory grow with it."""
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with Hostile(behave) as server:
        assert _fetch(server.url, tmp_path / "sky.parquet", "--rows", "100", "--retries", "0") == 1
        sent = server.sent
    _one_line(capsys, "bytes a query for these rows can need")
    assert sent < 64 << 20
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, f"peak memory grew {grown_mb:.0f} MB"


@pytest.mark.slow
def test_timeout_is_for_the_whole_reply_not_each_read(tmp_path, capsys):
    """--timeout 3 --retries 0 against a server sending a byte every 0.5 s: about 3 s, not
    the minutes the whole body would take."""
    started = time.monotonic()
    with Hostile(trickle) as server:
        assert _fetch(server.url, tmp_path / "sky.parquet", "--rows", "5", "--timeout", "3",
                      "--retries", "0") == 1
    assert time.monotonic() - started < 8
    _one_line(capsys, "took more than 3 s (--timeout) in all")


def test_out_that_is_a_directory_is_refused_before_any_request(tmp_path, capsys):
    with Hostile(ignores_top) as server:
        (tmp_path / "d").mkdir()
        assert _fetch(server.url, tmp_path / "d", "--rows", "10") == 2
        assert server.requests == 0
    _one_line(capsys, "is a directory; name a new .parquet file (nothing was downloaded)")


def test_reply_cap_grows_with_rows():
    assert skyserver.reply_cap(100) < skyserver.reply_cap(50_000) < 200 << 20
