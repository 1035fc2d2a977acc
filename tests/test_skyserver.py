"""SkyServer fetch against a replay server on 127.0.0.1: chunks, retries, bad replies, resume, SQL checks."""

from __future__ import annotations

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pyarrow.parquet as pq
import pytest

from sdss_distill.core.errors import InputError
from sdss_distill.core.io import sha256_file
from sdss_distill.core.schema import CANONICAL_COLUMNS
from sdss_distill.data import skyserver
from sdss_distill.data.cli import main
from sdss_distill.data.table import load_table

CANNED = Path(__file__).parent / "data" / "skyserver"
PROG = "python -m sdss_distill.data fetch"
ROWS = (CANNED / "rows.csv").read_text().splitlines()[2:]
SPECOBJIDS = [int(line.split(",")[12]) for line in ROWS]  # exact, from the text


class Replay:
    """Answers SqlSearch like SkyServer from rows.csv; `faults` maps request number -> reply."""

    def __init__(self):
        self.sql: list[str] = []
        self.faults: dict[int, tuple[int, bytes]] = {}
        self.fail_from: int | None = None  # every request from this number on gets HTTP 500
        self.cut: set[int] = set()  # requests whose reply stops short of its Content-Length
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def reply(self, sql: str) -> tuple[int, bytes]:
        n = len(self.sql)
        self.sql.append(sql)
        if self.fail_from is not None and n >= self.fail_from:
            return 500, b"<html><title>Internal Server Error</title></html>"
        if n in self.faults:
            return self.faults[n]
        top = int(re.search(r"SELECT TOP (\d+)", sql).group(1))
        after = int(re.search(r"s\.specobjid > (\d+)", sql).group(1))
        rows = [r for r, k in zip(ROWS, SPECOBJIDS) if k > after][:top]
        head = (CANNED / "rows.csv").read_text().splitlines()[:2]
        return 200, ("\n".join(head + rows) + "\n").encode()

    def _handler(self):
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query)
                if url.path != "/dr17/SkyServerWS/SearchTools/SqlSearch" or query.get("format") != ["csv"]:
                    status, body = 404, b"not found"
                else:
                    status, body = replay.reply(query["cmd"][0])
                cut = len(replay.sql) - 1 in replay.cut
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if cut:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if cut else body)

            def log_message(self, *args):
                pass

        return Handler

    def afters(self) -> list[int]:
        return [int(re.search(r"s\.specobjid > (\d+)", s).group(1)) for s in self.sql]


@pytest.fixture
def server():
    replay = Replay()
    thread = threading.Thread(target=replay.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield replay
    replay.server.shutdown()
    replay.server.server_close()
    thread.join(timeout=5)


def fetch(server, out, *args) -> int:
    return main(["fetch", "--base-url", server.url, "--out", str(out), "--quiet", "--backoff", "0",
                 "--retries", "2", *args])


def test_happy_path_writes_parquet_and_provenance(server, tmp_path, capsys):
    out = tmp_path / "sky.parquet"
    assert fetch(server, out, "--rows", "10", "--mag", "r", "15", "22") == 0
    assert len(server.sql) == 1 and "SELECT TOP 10" in server.sql[0]
    assert "s.z AS redshift" in server.sql[0] and "p.r BETWEEN 15.0 AND 22.0" in server.sql[0]
    table = pq.read_table(out)
    assert table.column_names == list(CANONICAL_COLUMNS)
    assert str(table.schema.field("specobjid").type) == "uint64"
    assert table["specobjid"].to_pylist() == SPECOBJIDS[:10]
    prov = json.loads(skyserver.provenance_path(out).read_text())
    assert prov["rows"] == 10 and prov["release"] == 17 and prov["base_url"] == server.url
    assert prov["sha256"] == sha256_file(out) and prov["parameters"]["magnitudes"]["r"] == [15.0, 22.0]
    assert "{after}" in prov["sql_template"] and prov["created_utc"].endswith("+00:00")
    assert not skyserver.partial_dir(out).exists()
    assert "wrote 10 rows" in capsys.readouterr().out
    df = load_table(out)  # the training loader reads it, ids as text
    assert df["specobjid"].iloc[-1] == str(SPECOBJIDS[9])


def test_chunks_page_by_specobjid(server, tmp_path):
    out = tmp_path / "sky.parquet"
    assert fetch(server, out, "--rows", "25", "--chunk", "10") == 0
    assert server.afters() == [0, SPECOBJIDS[9], SPECOBJIDS[19]]
    assert [int(re.search(r"TOP (\d+)", s).group(1)) for s in server.sql] == [10, 10, 5]
    assert pq.read_table(out)["specobjid"].to_pylist() == SPECOBJIDS
    assert pq.ParquetFile(out).metadata.num_row_groups == 3


def test_fewer_matches_than_asked_stops_on_an_empty_reply(server, tmp_path, capsys):
    out = tmp_path / "sky.parquet"
    assert fetch(server, out, "--rows", "40", "--chunk", "10") == 0
    assert server.afters()[-1] == SPECOBJIDS[-1] and len(server.sql) == 4
    assert pq.read_table(out).num_rows == 25
    assert "only 25 objects match; asked 40" in capsys.readouterr().out


@pytest.mark.parametrize("fault", [
    (500, b"Internal Server Error"),
    (200, (CANNED / "error.html").read_bytes()),
    (200, (CANNED / "truncated.csv").read_bytes()),
    (200, b"#Table1\nobjid,ra\n1,2\n"),
], ids=["http-500", "html-page", "truncated", "wrong-columns"])
def test_a_bad_reply_is_retried(server, tmp_path, fault):
    server.faults = {0: fault}
    out = tmp_path / "sky.parquet"
    assert fetch(server, out, "--rows", "10") == 0
    assert len(server.sql) == 2 and server.sql[0] == server.sql[1]
    assert pq.read_table(out)["specobjid"].to_pylist() == SPECOBJIDS[:10]


@pytest.mark.parametrize("fault, message", [
    ((200, (CANNED / "error.html").read_bytes()),
     "reply is an HTML page, not CSV (SkyServer: Service Unavailable)"),
    ((200, (CANNED / "truncated.csv").read_bytes()), "truncated or garbled CSV"),
    ((503, b"busy"), "last: HTTP 503 (busy)"),
])
def test_a_reply_that_stays_bad_is_one_line_exit_1(server, tmp_path, capsys, fault, message):
    server.faults = {k: fault for k in range(3)}
    out = tmp_path / "sky.parquet"
    assert fetch(server, out, "--rows", "10") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{PROG}: error: {server.url}/dr17/") and message in err[0]
    assert "no valid reply after 3 attempt(s)" in err[0]
    assert len(server.sql) == 3 and list(tmp_path.iterdir()) == []


def test_a_reply_cut_short_in_transit_is_retried(server, tmp_path):
    server.cut = {0}
    out = tmp_path / "sky.parquet"
    assert fetch(server, out, "--rows", "10") == 0
    assert len(server.sql) == 2 and pq.read_table(out)["specobjid"].to_pylist() == SPECOBJIDS[:10]


def test_a_client_error_is_not_retried(server, tmp_path, capsys):
    server.faults = {0: (400, b"<html><body>Incorrect syntax near 'TOP'</body></html>")}
    assert fetch(server, tmp_path / "sky.parquet", "--rows", "10") == 1
    assert len(server.sql) == 1
    assert "HTTP 400 (Incorrect syntax near 'TOP')" in capsys.readouterr().err


def test_no_server_is_retried_then_one_line(tmp_path, capsys):
    dead = Replay()
    dead.server.server_close()  # nothing listens on this port now
    assert fetch(dead, tmp_path / "sky.parquet", "--rows", "10", "--timeout", "2") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ConnectionError" in err[0] and "check --base-url" in err[0]


def test_resume_after_the_server_dies_fetches_only_the_rest(server, tmp_path, capsys):
    out = tmp_path / "sky.parquet"
    server.fail_from = 2
    assert fetch(server, out, "--rows", "25", "--chunk", "10") == 1
    state = json.loads((skyserver.partial_dir(out) / "state.json").read_text())
    assert [c["rows"] for c in state["chunks"]] == [10, 10] and not out.exists()
    server.fail_from, server.sql = None, []
    assert fetch(server, out, "--rows", "25", "--chunk", "10") == 0
    assert server.afters() == [SPECOBJIDS[19]]
    assert pq.read_table(out)["specobjid"].to_pylist() == SPECOBJIDS
    assert not skyserver.partial_dir(out).exists()


def test_resume_after_a_kill_between_chunk_and_state(server, tmp_path, monkeypatch):
    """Killed after chunk 2's file but before its state entry: the re-run fetches chunk 2 again."""
    out = tmp_path / "sky.parquet"
    real, calls = skyserver.write_atomic, []

    def dying(path, content):
        calls.append(Path(path).name)
        if len(calls) == 4:  # chunk-00000, state, chunk-00001, state <- killed here
            raise KeyboardInterrupt
        real(path, content)

    monkeypatch.setattr(skyserver, "write_atomic", dying)
    assert fetch(server, out, "--rows", "25", "--chunk", "10") == 130
    monkeypatch.setattr(skyserver, "write_atomic", real)
    server.sql = []
    assert fetch(server, out, "--rows", "25", "--chunk", "10") == 0
    assert server.afters() == [SPECOBJIDS[9], SPECOBJIDS[19]]
    assert pq.read_table(out)["specobjid"].to_pylist() == SPECOBJIDS


def test_other_arguments_refuse_to_mix_with_a_partial_fetch(server, tmp_path, capsys):
    out = tmp_path / "sky.parquet"
    server.fail_from = 1
    assert fetch(server, out, "--rows", "25", "--chunk", "10") == 1
    capsys.readouterr()
    assert fetch(server, out, "--rows", "25", "--chunk", "10", "--mag", "r", "19", "22") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unfinished fetch with other arguments" in err[0]
    assert "differs in: magnitudes" in err[0] and "sky.parquet.partial" in err[0]


def test_dry_run_prints_sql_and_sends_nothing(server, tmp_path, capsys):
    out = tmp_path / "sky.parquet"
    assert fetch(server, out, "--rows", "7", "--classes", "qso", "--mag", "r", "19", "22.5", "--dry-run") == 0
    printed = capsys.readouterr().out
    assert printed.startswith("SELECT TOP 7\n") and "s.class IN ('QSO')" in printed
    assert "p.r BETWEEN 19.0 AND 22.5" in printed and "nothing sent" in printed
    assert server.sql == [] and list(tmp_path.iterdir()) == []


def test_base_url_from_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv(skyserver.BASE_URL_ENV, server.url)
    out = tmp_path / "sky.parquet"
    assert main(["fetch", "--out", str(out), "--rows", "3", "--quiet"]) == 0
    assert len(server.sql) == 1 and pq.read_table(out).num_rows == 3


@pytest.mark.parametrize("args, message", [
    (["--rows", "-5"], "--rows must be a whole number from 1 to 50000000, got -5"),
    (["--rows", "0"], "--rows must be a whole number from 1 to 50000000, got 0"),
    (["--mag", "r", "19", "45"], "--mag r: need 0 <= MIN <= MAX <= 40, got 19.0 45.0"),
    (["--mag", "r", "nan", "22"], "--mag r: need 0 <= MIN <= MAX <= 40, got nan 22.0"),
    (["--mag", "r", "22", "19"], "--mag r: need 0 <= MIN <= MAX <= 40, got 22.0 19.0"),
    (["--mag", "r", "19;", "22"], "--mag r: limits must be numbers, got '19;' '22'"),
    (["--mag", "y", "1", "2"], "--mag: unknown band 'y'; choose one of u, g, r, i, z"),
    (["--classes", "GALAXY", "PLANET'--"], "--classes: unknown class(es) PLANET'--; choose from "
                                             "GALAXY, QSO, STAR"),
    (["--chunk", "0"], "--chunk must be from 1 to 500000, got 0"),
    (["--release", "5"], "--release must be from 12 to 19, got 5"),
    (["--timeout", "nan"], "--timeout must be more than 0 and at most 3600 seconds, got nan"),
    (["--retries", "-1"], "--retries must be from 0 to 20, got -1"),
    (["--base-url", "ftp://example.org"], "--base-url / $SDSS_DISTILL_SKYSERVER must be an http(s)"),
])
def test_bad_parameters_one_line_exit_2(server, tmp_path, capsys, args, message):
    assert main(["fetch", "--base-url", server.url, "--out", str(tmp_path / "x.parquet"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{PROG}: error: {message}")
    assert server.sql == [] and list(tmp_path.iterdir()) == []


def test_sql_takes_only_typed_values():
    q = skyserver.make_query(100, [("g", "0", "20.5")], ["star", "GALAXY"])
    sql = skyserver.build_sql(q, after=SPECOBJIDS[-1], top=50)
    assert f"s.specobjid > {SPECOBJIDS[-1]}" in sql and "SELECT TOP 50" in sql
    assert "s.class IN ('GALAXY', 'STAR')" in sql and "p.g BETWEEN 0.0 AND 20.5" in sql
    with pytest.raises(ValueError, match="after must be an int >= 0"):
        skyserver.build_sql(q, after="0 OR 1=1")
    forged = skyserver.Query(1, (("u; DROP TABLE x", 0.0, 1.0),), ("GALAXY",))
    with pytest.raises(ValueError, match="unknown bands or classes"):
        skyserver.build_sql(forged)
    with pytest.raises(InputError, match="band 'r' given twice"):
        skyserver.make_query(1, [("r", 1, 2), ("r", 3, 4)])


def test_parse_reply_reads_ids_exactly_and_rejects_float_ids():
    table = skyserver.parse_reply((CANNED / "rows.csv").read_bytes())
    assert table["specobjid"].to_pylist() == SPECOBJIDS and max(SPECOBJIDS) > 2**63
    float_ids = (CANNED / "rows.csv").read_text().replace(ROWS[0].split(",")[0], "1.23764877679500E+018")
    with pytest.raises(skyserver.BadReply, match="truncated or garbled CSV"):
        skyserver.parse_reply(float_ids.encode())
    assert skyserver.parse_reply(b"#Table1\n").num_rows == 0
    crlf = b"\xef\xbb\xbf" + (CANNED / "rows.csv").read_bytes().replace(b"\n", b"\r\n")  # BOM, CRLF
    assert skyserver.parse_reply(crlf)["specobjid"].to_pylist() == SPECOBJIDS
    expected = pd.read_csv(CANNED / "rows.csv", skiprows=1)
    assert table["r"].to_pylist() == expected["r"].tolist()


def test_killed_while_joining_chunks_leaves_no_output_and_reruns_offline(server, tmp_path, monkeypatch):
    out = tmp_path / "sky.parquet"
    real, calls = os.replace, []

    def dying(src, dst):
        calls.append(Path(dst).name)
        if Path(dst) == out:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(os, "replace", dying)
    assert fetch(server, out, "--rows", "10") == 130
    monkeypatch.setattr(os, "replace", real)
    assert calls == ["chunk-00000.parquet", "state.json", "sky.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sky.parquet.partial"]  # no temp file left
    server.sql = []
    assert fetch(server, out, "--rows", "10") == 0
    assert server.sql == [] and pq.read_table(out)["specobjid"].to_pylist() == SPECOBJIDS[:10]


def test_no_matching_objects_is_one_line_exit_2(server, tmp_path, capsys):
    server.faults = {0: (200, b"#Table1\n" + ",".join(CANONICAL_COLUMNS).encode() + b"\n")}
    assert fetch(server, tmp_path / "sky.parquet", "--rows", "10", "--classes", "QSO") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no objects matching" in err[0] and "loosen --mag or --classes" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_unreadable_resume_state_is_one_line(server, tmp_path, capsys):
    out = tmp_path / "sky.parquet"
    skyserver.partial_dir(out).mkdir()
    (skyserver.partial_dir(out) / "state.json").write_text("{not json")
    assert fetch(server, out, "--rows", "10") == 2
    assert re.search(r"state\.json: corrupt JSON .*; delete", capsys.readouterr().err) and server.sql == []
