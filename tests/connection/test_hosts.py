"""Hosts files: data-driven cases from tests/data/hosts_files, loading from disk, and a fuzz of the parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocsps.errors import UsageError
from ocsps.remote.hosts import HostEntry, load_hosts_file, parse_hosts_file

CASES = Path(__file__).parent.parent / "data" / "hosts_files"
CASE_NAMES = sorted(p.name.removesuffix(".txt") for p in CASES.glob("*.txt"))


def test_cases_exist() -> None:
    assert len(CASE_NAMES) >= 30
    for name in CASE_NAMES:
        assert (CASES / f"{name}.expected.json").is_file(), name


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hosts_file_case(name: str) -> None:
    text = (CASES / f"{name}.txt").read_bytes().decode("utf-8")
    expected = json.loads((CASES / f"{name}.expected.json").read_text(encoding="utf-8"))
    source = f"{name}.txt"
    if "error" in expected:
        with pytest.raises(UsageError) as caught:
            parse_hosts_file(text, source=source)
        message = str(caught.value)
        assert message.startswith(f"{source}:{expected['line']}: "), message
        assert expected["error"] in message
        assert "\n" not in message and "\x00" not in message
        assert len(message) < 400
    else:
        entries = parse_hosts_file(text, source=source)
        assert [HostEntry(**e) for e in expected["entries"]] == entries


def test_load_hosts_file_reads_from_disk() -> None:
    entries = load_hosts_file(CASES / "ports_and_addresses.txt")
    assert entries[0] == HostEntry("fe01.contoso.com", 5986, 1)


def test_load_hosts_file_names_the_path_in_errors() -> None:
    path = CASES / "duplicate_case_insensitive.txt"
    with pytest.raises(UsageError, match=r"duplicate_case_insensitive\.txt:4: "):
        load_hosts_file(path)


def test_load_hosts_file_refuses_a_file_without_hosts() -> None:
    with pytest.raises(UsageError, match="no hosts in the file"):
        load_hosts_file(CASES / "only_comments.txt")


def test_load_hosts_file_missing(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read hosts file .*nope\.txt"):
        load_hosts_file(tmp_path / "nope.txt")


def test_load_hosts_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"f\xe901.contoso.com\n")
    with pytest.raises(UsageError, match="not UTF-8"):
        load_hosts_file(path)


def test_load_hosts_file_too_big(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"#" * 1_000_001)
    with pytest.raises(UsageError, match="too big"):
        load_hosts_file(path)


def test_entries_keep_file_order_and_line_numbers() -> None:
    text = "\n".join(f"fe{i:02d}.contoso.com" for i in range(1, 51))
    entries = parse_hosts_file(text, source="pool.txt")
    assert [e.line for e in entries] == list(range(1, 51))
    assert entries[-1].host == "fe50.contoso.com"


_LINE_ALPHABET = st.sampled_from(list("abcfe0159.-:[]#; \t\r$()'\"`|&%/\\\x00\u00e9\u2028\ufeff"))
_LINES = st.one_of(
    st.text(alphabet=_LINE_ALPHABET, max_size=40),
    st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,3}(:[0-9]{1,6})?", fullmatch=True),
    st.from_regex(r"\[?[0-9a-f:]{2,20}\]?(:[0-9]{1,5})?", fullmatch=True),
    st.text(max_size=30),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINES, max_size=12), st.sampled_from(["\n", "\r\n"]))
def test_fuzz_parse_hosts_file_returns_entries_or_usage_error(lines: list[str], newline: str) -> None:
    text = newline.join(lines)
    try:
        entries = parse_hosts_file(text, source="fuzz.txt")
    except UsageError as exc:
        message = str(exc)
        assert message.startswith("fuzz.txt:")
        assert "\n" not in message
        return
    assert all(isinstance(e, HostEntry) for e in entries)
    keys = [e.host.lower() for e in entries]
    assert len(keys) == len(set(keys))
    for entry in entries:
        assert entry.port is None or 1 <= entry.port <= 65535
        assert entry.host and entry.host.isascii() and not any(c in entry.host for c in " ;$()'\"`|&\x00#")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_parse_hosts_file_arbitrary_text(text: str) -> None:
    try:
        entries = parse_hosts_file(text, source="any")
    except UsageError:
        return
    assert isinstance(entries, list)
