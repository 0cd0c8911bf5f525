"""LcsCmd log parser: data-driven cases from tests/data/lcscmd_logs plus the decoding and strictness rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocsps.errors import OcspsError
from ocsps.jsonout import to_builtins
from ocsps.results.lcscmd_log import (
    LcsCmdLog,
    LcsCmdLogError,
    LcsCmdTask,
    LogFormat,
    decode_log,
    detect_format,
    parse_lcscmd_log,
)

from .psobjects import DATA

LOGS = DATA / "lcscmd_logs"
LOG_FILES = sorted(p for p in LOGS.iterdir() if p.suffix in (".xml", ".html", ".txt"))


def test_every_log_has_an_expectation() -> None:
    assert LOG_FILES
    for path in LOG_FILES:
        assert path.with_name(f"{path.stem}.expected.json").is_file(), path.name
    for expected in LOGS.glob("*.expected.json"):
        stem = expected.name.removesuffix(".expected.json")
        assert any(p.stem == stem for p in LOG_FILES), expected.name


@pytest.mark.parametrize("path", LOG_FILES, ids=lambda p: p.name)
def test_log_case(path: Path) -> None:
    expected = json.loads(path.with_name(f"{path.stem}.expected.json").read_text(encoding="utf-8"))
    data = path.read_bytes()
    if expected.get("error"):
        with pytest.raises(LcsCmdLogError) as info:
            parse_lcscmd_log(data)
        assert expected["reason_contains"] in info.value.reason
        lenient = parse_lcscmd_log(data, strict=False)
        assert lenient.error == info.value.reason
        assert lenient.tasks == ()
        assert not lenient.all_succeeded
        return
    parsed = parse_lcscmd_log(data)
    document = to_builtins(parsed)
    assert document.pop("raw") == decode_log(data)  # the decoded text is part of the document
    assert document == expected
    assert parse_lcscmd_log(data, strict=False) == parsed
    assert parsed.raw == decode_log(data)


def test_text_input_equals_bytes_input() -> None:
    data = (LOGS / "success.xml").read_bytes()
    assert parse_lcscmd_log(data.decode("utf-8")) == parse_lcscmd_log(data)


def test_error_is_an_ocsps_error_with_reason() -> None:
    with pytest.raises(OcspsError) as info:
        parse_lcscmd_log("")
    assert isinstance(info.value, LcsCmdLogError)
    assert info.value.reason == "log is empty"
    assert "LcsCmd log unreadable: log is empty" in str(info.value)


@pytest.mark.parametrize(
    ("result", "ok"),
    [
        ("Success", True),
        ("success", True),
        (" SUCCESS ", True),
        ("Success.", True),
        ("Succeeded", False),
        ("Success (with warnings)", False),
        ("Successful", False),
        ("", False),
        ("Failure", False),
    ],
)
def test_only_success_counts(result: str, ok: bool) -> None:
    assert LcsCmdTask("t", result).succeeded is ok


def test_all_succeeded_needs_at_least_one_task() -> None:
    assert not LcsCmdLog(format=LogFormat.XML, tasks=(), raw="").all_succeeded
    assert LcsCmdLog(format=LogFormat.XML, tasks=(LcsCmdTask("t", "Success"),), raw="").all_succeeded


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b""), ("utf-16-be", b""), ("cp1252", b"")],
)
def test_decoding(encoding: str, bom: bytes) -> None:
    text = "Task: Entfernen der Objekte für Größe\nExecution Result: Success\n"
    assert decode_log(bom + text.encode(encoding)) == text


def test_xml_attribute_and_text_forms() -> None:
    log = parse_lcscmd_log(
        '<Log><Task Status="Success">Stop services</Task><DeactivateTask result="Failure" name="x"/></Log>'
    )
    assert [(t.name, t.result, t.kind) for t in log.tasks] == [
        ("Stop services", "Success", "task"),
        ("x", "Failure", "task"),
    ]


def test_xml_prefers_execution_result_over_status() -> None:
    log = parse_lcscmd_log(
        "<Log><Task Name='a' Status='Running'><ExecutionResult>Failure</ExecutionResult></Task></Log>"
    )
    assert log.tasks[0].result == "Failure"


def test_xhtml_goes_to_the_html_parser() -> None:
    text = (
        '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body><table>'
        "<tr><th>Task</th><th>Execution Result</th></tr><tr><td>a</td><td>Success</td></tr>"
        "</table></body></html>"
    )
    assert detect_format(text) is LogFormat.HTML
    assert parse_lcscmd_log(text).all_succeeded


def test_transaction_elements_are_not_tasks() -> None:
    with pytest.raises(LcsCmdLogError):
        parse_lcscmd_log("<Log><Transaction><Result>Success</Result></Transaction></Log>")
