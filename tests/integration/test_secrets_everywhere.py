"""A server that echoes the credentials it got (a 401 body quoting the Authorization and X-Api-Key
headers, as some gateways do): no output of the run holds them in full, neither records.jsonl,
requests.csv, summary.json, report.html, the history database, `history show` and `export`, nor
the terminal."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

from sse_perf_tool import cli

from .loopback_http import LoopbackServer

KEY = "app-Zq8w2Lk5Tr9Yx3Vb"
HEADER_SECRET = "hdr-Secret0987654321"


class _EchoingGateway(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"code": "unauthorized", "status": 401,
                           "message": f"key {self.headers.get('Authorization')} and {self.headers.get('X-Api-Key')} "
                                      "are not valid"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_an_echoed_key_is_masked_in_every_output(tmp_path, capsys):
    server = LoopbackServer(_EchoingGateway).start()
    try:
        code = cli.main(["--base-url", server.base, "--api-key", KEY, "--header", f"X-Api-Key: {HEADER_SECRET}",
                         "--requests", "3", "--threads", "1", "--keep-going", "--output-dir", str(tmp_path)])
    finally:
        server.close()
    printed = capsys.readouterr()
    assert code == 3  # every request failed: exit 3
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    assert records and all(r["error_kind"] == "http_status" and "not valid" in r["error"] for r in records)
    assert "app-…x3Vb" in records[0]["error"] and "hdr-…4321" in records[0]["error"], "prefix and last four kept"
    for name in ("records.jsonl", "requests.csv", "summary.json", "report.html", "timeseries.csv"):
        text = (run_dir / name).read_text(encoding="utf-8")
        assert KEY not in text and HEADER_SECRET not in text, name
    db = (tmp_path / "history.db").read_bytes()
    assert KEY.encode() not in db and HEADER_SECRET.encode() not in db
    assert cli.main(["history", "show", "1", "--output-dir", str(tmp_path)]) == 0
    assert cli.main(["history", "export", "1", "--output-dir", str(tmp_path), "--format", "csv"]) == 0
    assert cli.main(["history", "export", "1", "--output-dir", str(tmp_path), "--format", "json"]) == 0
    shown = capsys.readouterr()
    for text in (printed.out, printed.err, shown.out, shown.err):
        assert KEY not in text and HEADER_SECRET not in text
