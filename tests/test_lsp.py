"""The language server driven as an editor drives it: `python -m stratlang lsp` in a
subprocess, JSON-RPC over its standard input and output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import stratlang
from stratlang.lsp import from_utf16, utf16_column


class Client:
    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "stratlang", "lsp"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.next_id = 0
        self.notifications: list[dict] = []

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def receive(self) -> dict:
        out = self.process.stdout
        assert out is not None
        length = 0
        while (line := out.readline().strip()):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return json.loads(out.read(length))

    def request(self, method: str, params: dict | None) -> object:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        while True:
            message = self.receive()
            if message.get("id") == self.next_id and "method" not in message:
                assert "error" not in message, message
                return message["result"]
            self.notifications.append(message)

    def notify(self, method: str, params: dict) -> None:
        self.send({"method": method, "params": params})

    def diagnostics(self, uri: str) -> list[dict]:
        while True:
            for i, message in enumerate(self.notifications):
                if (message.get("method") == "textDocument/publishDiagnostics"
                        and message["params"]["uri"] == uri):
                    del self.notifications[: i + 1]
                    return message["params"]["diagnostics"]
            self.notifications.append(self.receive())


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("lsp")
    (folder / "d.csv").write_text("y,income,age,state\n1,2,30,CA\n")
    (folder / "borders.csv").write_text("source,target\nCA,NV\n")
    return folder


@pytest.fixture(scope="module")
def client():
    client = Client()
    result = client.request("initialize", {"processId": None, "rootUri": None,
                                           "capabilities": {}})
    capabilities = result["capabilities"]  # type: ignore[index]
    assert result["serverInfo"] == {"name": "stratlang",  # type: ignore[index]
                                    "version": stratlang.__version__}
    assert capabilities["hoverProvider"] and capabilities["definitionProvider"]
    assert capabilities["documentFormattingProvider"] and "completionProvider" in capabilities
    client.notify("initialized", {})
    yield client
    assert client.request("shutdown", None) is None
    client.notify("exit", {})
    assert client.process.wait(timeout=10) == 0


def open_doc(client: Client, path: Path, text: str) -> str:
    uri = path.as_uri()
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "strat", "version": 1, "text": text}})
    return uri


def test_utf16_columns():
    line = "\t😀é x"  # a tab (one unit), an emoji (two), é (one)
    assert [utf16_column(line, c) for c in range(1, 7)] == [0, 1, 3, 4, 5, 6]
    assert [from_utf16(line, u) for u in (0, 1, 3, 4, 5)] == [0, 1, 2, 3, 4]


def test_diagnostics_on_open_and_change(client, folder):
    text = 'data "d.csv"\nresponse y ~ sqared\nstratify state ~ path weight -3\n'
    uri = open_doc(client, folder / "a.strat", text)
    got = client.diagnostics(uri)
    assert [(d["code"], d["range"], d["message"]) for d in got] == [
        ("S104", {"start": {"line": 1, "character": 13}, "end": {"line": 1, "character": 19}},
         "unknown loss 'sqared'; did you mean 'squared'?"),
        ("S206", {"start": {"line": 2, "character": 29}, "end": {"line": 2, "character": 31}},
         "graph weight must be nonnegative; got -3")]
    assert {d["severity"] for d in got} == {1} and {d["source"] for d in got} == {"stratlang"}
    # a tab and a character beyond the BMP before the error: UTF-16 columns
    client.notify("textDocument/didChange", {
        "textDocument": {"uri": uri, "version": 2},
        "contentChanges": [{"text": 'data "😀.csv"\t😀\nresponse y ~ squared\n'}]})
    (only,) = client.diagnostics(uri)
    assert only["code"] == "S007"
    assert only["range"] == {"start": {"line": 0, "character": 14},
                             "end": {"line": 0, "character": 16}}
    assert only["message"] == "unexpected character '😀'"
    client.notify("textDocument/didChange", {
        "textDocument": {"uri": uri, "version": 3},
        "contentChanges": [{"text": 'data "d.csv"\nresponse y ~ squared\n'}]})
    assert client.diagnostics(uri) == []
    client.notify("textDocument/didChange", {
        "textDocument": {"uri": uri, "version": 4},
        "contentChanges": [{"text": 'data "d.csv"\nresponse y ~ sqared\n'}]})
    assert [d["code"] for d in client.diagnostics(uri)] == ["S104"]
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert client.diagnostics(uri) == []  # closed: its problems leave the editor's list


def test_the_data_header_is_checked_as_check_does(client, folder, capsys):
    from stratlang.cli import main

    text = ('data "d.csv"\nresponse y ~ squared\nfeatures incme, log(age)\n'
            'stratify stat ~ path weight 1\nmissing drop\n')
    spec = folder / "cols.strat"
    spec.write_text(text)
    uri = open_doc(client, spec, text)
    got = client.diagnostics(uri)
    assert main(["check", str(spec), "--format", "json"]) == 1
    expected = json.loads(capsys.readouterr().out)["errors"]
    assert [(d["code"], d["message"], d["range"]["start"]["line"] + 1,
             d["range"]["start"]["character"] + 1, d["range"]["end"]["character"] + 1)
            for d in got] == [(e["code"], e["message"], e["line"], e["column"], e["end_column"])
                              for e in expected]
    assert [d["message"] for d in got] == [
        "column 'incme' not found in the data (d.csv); did you mean 'income'?",
        "column 'stat' not found in the data (d.csv); did you mean 'state'?"]


def test_hover(client, folder):
    text = ('response y ~ huber(M=2)\nregularize 1 * sum_squares\n'
            'stratify state ~ edges("borders.csv") weight 1\n')
    uri = open_doc(client, folder / "h.strat", text)
    client.diagnostics(uri)

    def hover(line, character):
        result = client.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                       "position": {"line": line,
                                                                    "character": character}})
        return result and result["contents"]["value"]  # type: ignore[index]

    from stratlang.kinds import LOSSES, REGULARIZERS

    huber = LOSSES["huber"]
    assert hover(0, 15).startswith(f"**huber** (loss)\n\n{huber.doc}\n\nParameters: `M` (default 1")
    m = next(p for p in huber.params if p.name == "M")
    assert hover(0, 19) == f"**M**: parameter of loss `huber`\n\n{m.doc}"
    assert hover(1, 18).startswith(f"**sum_squares** (regularizer)\n\n"
                                   f"{REGULARIZERS['sum_squares'].doc}")
    assert hover(2, 3) == ('**stratify** statement: `"stratify" target "~" call option*`')
    assert hover(0, 23) is None


def test_hover_on_options(client, folder):
    uri = open_doc(client, folder / "o.strat", "response y ~ squared\nsolver admm penalty 2\n")
    client.diagnostics(uri)
    result = client.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                   "position": {"line": 1, "character": 13}})
    from stratlang.backends import BACKENDS

    assert result["contents"]["value"] == (  # type: ignore[index]
        f"**penalty**: option of backend `admm`\n\n{BACKENDS['admm'].options['penalty'].doc}")
    result = client.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                   "position": {"line": 1, "character": 8}})
    assert result["contents"]["value"].startswith(  # type: ignore[index]
        f"**admm** (backend)\n\n{BACKENDS['admm'].doc}\n\nParameters: `max_iter` (default ")


def test_completion(client, folder):
    text = ('data "d.csv"\nresponse y ~ \nstratify state ~ edges(\nfeatures inc\n\n'
            'solver admm \npersonalize \n')
    uri = open_doc(client, folder / "c.strat", text)
    client.diagnostics(uri)

    def labels(line, character):
        result = client.request("textDocument/completion", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": character}})
        return [item["label"] for item in result["items"]]  # type: ignore[index]

    from stratlang.kinds import GRAPHS, LOSSES
    from stratlang.language.syntax import STATEMENT_KEYWORDS

    assert labels(4, 0) == list(STATEMENT_KEYWORDS)
    assert labels(1, 13)[:len(LOSSES)] == LOSSES.names()
    assert labels(2, 23) == [p.name for p in GRAPHS["edges"].params]
    assert labels(3, 12)[-4:] == ["y", "income", "age", "state"]
    assert labels(1, 9) == ["y", "income", "age", "state"]  # the response: a column
    from stratlang.backends import BACKENDS
    from stratlang.language.personalize import PERSONALIZE_OPTIONS

    assert labels(5, 12) == [*(p.name for p in BACKENDS["admm"].options), "select"]
    assert labels(5, 7) == BACKENDS.names()
    assert labels(6, 12) == [p.name for p in PERSONALIZE_OPTIONS]


def test_formatting_keeps_comments(client, folder):
    text = "response y ~ squared  # the loss\nmodel m\n"
    uri = open_doc(client, folder / "m.strat", text)
    client.diagnostics(uri)
    edits = client.request("textDocument/formatting", {"textDocument": {"uri": uri},
                                                       "options": {"tabSize": 4,
                                                                   "insertSpaces": True}})
    assert edits == [{"range": {"start": {"line": 0, "character": 0},
                                "end": {"line": 2, "character": 0}},
                      "newText": "model m\nresponse y ~ squared  # the loss\n"}]


def test_definition_goes_to_the_file(client, folder):
    text = 'data "d.csv"\nresponse y ~ squared\nstratify state ~ edges("borders.csv") weight 1\n'
    uri = open_doc(client, folder / "g.strat", text)
    client.diagnostics(uri)

    def where(line, character):
        return client.request("textDocument/definition", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": character}})

    start = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}
    assert where(0, 8) == {"uri": (folder / "d.csv").as_uri(), "range": start}
    assert where(2, 28) == {"uri": (folder / "borders.csv").as_uri(), "range": start}
    assert where(1, 3) is None


def test_a_request_on_a_file_neither_open_nor_on_disk_is_answered(client, folder):
    uri = (folder / "never-written.strat").as_uri()
    at = {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}}
    assert client.request("textDocument/hover", at) is None
    assert client.request("textDocument/definition", at) is None


def test_a_message_that_is_not_json_is_told_in_one_line_and_the_server_goes_on():
    def framed(body: bytes) -> bytes:
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    hover = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "textDocument/hover", "params": {
        "textDocument": {"uri": "file:///a.strat"}, "position": {"line": -1, "character": 0}}})
    shutdown = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "shutdown"}).encode()
    exit_ = json.dumps({"jsonrpc": "2.0", "method": "exit"}).encode()
    done = subprocess.run([sys.executable, "-m", "stratlang", "lsp"],
                          input=framed(b'{"a":') + framed(hover.encode()) + framed(shutdown)
                          + framed(exit_), capture_output=True, timeout=60)
    assert done.returncode == 0
    assert b'"id": 1, "jsonrpc": "2.0", "result": null' in done.stdout
    err = done.stderr.decode()
    assert "Traceback" not in err
    assert ("stratlang lsp: Unable to handle message\n  (JSONDecodeError: Expecting value: "
            "line 1 column 6 (char 5))") in err
    assert ("stratlang lsp: Unable to deserialize message\n  (ValueError: Position.line should "
            "be in range [0:2147483647], but was -1.)") in err


def test_by_and_interact_complete_the_stratification_columns():
    from stratlang.lsp import completions

    text = ("data \"d.csv\"\nstratify (lat, lon) ~ grid\nstratify store ~ path\n"
            "features price by \nfeatures price by (store weight 2, l\ninteract store * \n"
            "features price by store, \n")
    factors = [("lat", "column"), ("lon", "column"), ("store", "column")]
    assert completions(text, "x.strat", 3, 18) == factors
    assert completions(text, "x.strat", 4, 36) == factors
    assert completions(text, "x.strat", 5, 17) == factors
    # a next term: the transforms (and the data's columns, none here: no file)
    assert ("store", "column") not in completions(text, "x.strat", 6, 25)
