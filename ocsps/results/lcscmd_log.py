"""Reading the log LcsCmd.exe writes, to decide whether every deactivation task reported Success.

The layout of this log is not publicly documented. What is documented (OCS 2007 Administration Guide,
"Deactivating Server Roles") is that the log shows an "Execution Result" column per task, that actions
contain tasks, and that every task must read Success before the next step. LcsCmd writes an XML log
(``/XML``) and the wizard shows an HTML view of it. The format handled here is therefore inferred, and the
parser is written to be tolerant in what it reads and strict in what it concludes:

XML
    Elements whose local name is Task, Action, Step, SubTask, SubStep, SubAction or ends in "Task"
    (namespaces ignored, case-insensitive) are task entries. The result comes from an attribute or a
    direct child element named ExecutionResult / Execution_Result / Execution-Result, Result, Status or
    Outcome (in that order of preference; case, spaces, "_" and "-" ignored). The name comes from Name,
    TaskName, ActionName, DisplayName, Description, Title or Id, else from the element's own text. The
    detail comes from Detail(s), Message, Error, ErrorMessage, Reason or Info(rmation). An Action without
    a result of its own that contains tasks is represented by its tasks; any task element without a
    result is kept with an empty result, so it can never count as Success. Documents declaring entities
    are refused.
HTML
    Every ``<table>`` whose header row has an "Execution Result" cell; one entry per following row. The
    name column is the one headed Task / Task Name / Name / Description / Action / Step (else the first
    other column); a Detail / Message / Error column gives the detail. Repeated header rows and rows
    spanning the whole table (section labels) are skipped. A table that is never closed means the file
    was cut short and is refused, since the missing rows could hold a failure.
Text
    Lines such as ``Remove pool objects ... Execution Result: Success`` (the name before the marker; if
    it is empty, the preceding ``Task: <name>`` / ``Action: <name>`` / ``Step: <name>`` line or else
    the preceding non-blank line), and tables flattened to text whose header line has an
    "Execution Result" column separated by tabs, ``|`` or two or more spaces. ``Detail:`` /
    ``Message:`` / ``Error:`` lines next to a task become its detail.

A result counts as Success only if, after collapsing whitespace and dropping a final full stop, it equals
"Success" ignoring case: "Success (with warnings)" does not. Bytes are decoded from a BOM, UTF-16 without
BOM, UTF-8, then Windows-1252. Anything else (empty, binary, malformed XML, no task found) raises
:class:`LcsCmdLogError` with the reason, or, with ``strict=False``, is reported in :attr:`LcsCmdLog.error`.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from html.parser import HTMLParser

from ocsps.errors import OcspsError

__all__ = [
    "LcsCmdLog",
    "LcsCmdLogError",
    "LcsCmdTask",
    "LogFormat",
    "decode_log",
    "detect_format",
    "parse_lcscmd_log",
]


class LcsCmdLogError(OcspsError):
    """The LcsCmd log could not be read as a list of task results; ``reason`` says why."""

    exit_code = 1

    def __init__(self, reason: str, *, host: str | None = None) -> None:
        self.reason = reason
        super().__init__(
            f"LcsCmd log unreadable: {reason}",
            host=host,
            hint="open the log on the server and check every task's Execution Result by hand",
        )


class LogFormat(StrEnum):
    XML = "xml"
    HTML = "html"
    TEXT = "text"


def _clean_result(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class LcsCmdTask:
    """One task (or action) with its Execution Result exactly as the log states it."""

    name: str
    result: str
    detail: str = ""
    kind: str = "task"
    succeeded: bool = field(init=False, compare=False, repr=False)
    """The result reads Success (case, spacing and a final full stop aside)."""

    def __post_init__(self) -> None:
        success = _clean_result(self.result).removesuffix(".").casefold() == "success"
        object.__setattr__(self, "succeeded", success)


@dataclass(frozen=True)
class LcsCmdLog:
    """The tasks found in a log, in log order, with the decoded text kept for the record.

    ``format`` is None only when the log could not be read at all; ``error`` is set (and ``tasks`` is
    empty) whenever the log could not be read, which only happens with ``strict=False``.
    """

    format: LogFormat | None
    tasks: tuple[LcsCmdTask, ...]
    raw: str = field(repr=False)
    error: str | None = None
    all_succeeded: bool = field(init=False, compare=False, repr=False)
    """Positive evidence only: the log was read, has at least one task, and every task says Success."""

    def __post_init__(self) -> None:
        verdict = self.error is None and bool(self.tasks) and all(task.succeeded for task in self.tasks)
        object.__setattr__(self, "all_succeeded", verdict)

    @property
    def failed_tasks(self) -> tuple[LcsCmdTask, ...]:
        return tuple(task for task in self.tasks if not task.succeeded)


# ---------------------------------------------------------------------------------------------- decoding


def decode_log(data: str | bytes) -> str:
    """Decode log bytes to text, refusing data that is not text.

    Windows tools write UTF-16 ("Unicode") as often as UTF-8 or the ANSI code page, so the BOM is
    trusted first, then the zero-byte pattern of BOM-less UTF-16, then UTF-8, then Windows-1252.
    """
    text = data if isinstance(data, str) else _decode_bytes(bytes(data))
    text = text.removeprefix("\ufeff")
    _refuse_binary(text)
    return text


def _decode_bytes(data: bytes) -> str:
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise LcsCmdLogError(f"log has a {codec} byte order mark but does not decode") from exc
    if len(data) >= 4 and len(data) % 2 == 0:
        odd_zeros = data[1::2].count(0)
        even_zeros = data[0::2].count(0)
        half = len(data) // 2
        for zeros, other, codec in (
            (odd_zeros, even_zeros, "utf-16-le"),
            (even_zeros, odd_zeros, "utf-16-be"),
        ):
            if zeros > half * 0.4 and other < half * 0.05:
                try:
                    return data.decode(codec)
                except UnicodeDecodeError:
                    break
    for codec in ("utf-8", "cp1252", "latin-1"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    raise LcsCmdLogError("log bytes do not decode as text")  # latin-1 decodes everything; kept for clarity


# C0/C1 controls other than tab, line feed, vertical tab, form feed and carriage return; lone surrogates;
# private-use code points. A text log has next to none of them; decoded binary data is full of them.
_NON_TEXT_RE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff\ue000-\uf8ff\U000f0000-\U0010ffff]")


def _refuse_binary(text: str) -> None:
    if "\x00" in text:
        raise LcsCmdLogError("log contains NUL characters; it looks like binary data, not a log")
    controls = len(_NON_TEXT_RE.findall(text))
    if controls > max(2, len(text) // 100):
        raise LcsCmdLogError("log contains many control characters; it looks like binary data, not a log")


# ---------------------------------------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=4096)
def _norm(text: str) -> str:
    """Compare names the way an administrator would read them: no case, spaces, "_" or "-"."""
    return re.sub(r"[\s_\-]+", "", text).casefold()


_RESULT_KEYS = ("executionresult", "result", "status", "outcome")
_NAME_KEYS = ("name", "taskname", "actionname", "displayname", "description", "title", "id")
_DETAIL_KEYS = ("detail", "details", "message", "error", "errormessage", "reason", "information", "info")
_TASK_TAGS = {
    "task": "task",
    "subtask": "task",
    "action": "action",
    "subaction": "action",
    "step": "step",
    "substep": "step",
}


def _pick(values: dict[str, str], keys: Iterable[str]) -> str | None:
    for key in keys:
        if key in values:
            return values[key]
    return None


# ---------------------------------------------------------------------------------------------- XML


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _task_kind(tag: object) -> str | None:
    if not isinstance(tag, str):
        return None  # comments and processing instructions
    name = _norm(_local(tag))
    if name in _TASK_TAGS:
        return _TASK_TAGS[name]
    return "task" if name.endswith("task") and name != "task" else None


def _fields(element: ET.Element) -> dict[str, str]:
    """Attributes and direct child elements by normalised name (attributes win on a clash)."""
    values: dict[str, str] = {}
    for child in element:
        if isinstance(child.tag, str) and _task_kind(child.tag) is None:
            values.setdefault(_norm(_local(child.tag)), " ".join("".join(child.itertext()).split()))
    for key, value in element.attrib.items():
        values[_norm(_local(key))] = " ".join(value.split())
    return values


def _parse_xml(text: str) -> list[LcsCmdTask]:
    if re.search(r"<!ENTITY", text, re.IGNORECASE):
        raise LcsCmdLogError("XML log declares entities; refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, column = exc.position
        raise LcsCmdLogError(
            f"XML log is not well-formed at line {line}, column {column}; it may be truncated"
        ) from None
    except ValueError as exc:
        raise LcsCmdLogError(f"XML log cannot be parsed: {exc}") from None
    # ElementTree has no parent links, so one pass records, for every task element, its nearest task
    # ancestor: a task element contains other tasks exactly when it is someone's nearest task ancestor.
    has_task_inside: set[int] = set()
    stack: list[tuple[ET.Element, ET.Element | None]] = [(root, None)]
    while stack:
        element, nearest = stack.pop()
        if _task_kind(element.tag) is not None:
            if nearest is not None:
                has_task_inside.add(id(nearest))
            nearest = element
        stack.extend((child, nearest) for child in element)
    tasks: list[LcsCmdTask] = []
    counter = 0
    for element in root.iter():
        kind = _task_kind(element.tag)
        if kind is None:
            continue
        values = _fields(element)
        result = _pick(values, _RESULT_KEYS)
        if result is None and id(element) in has_task_inside:
            continue
        counter += 1
        name = _pick(values, _NAME_KEYS) or " ".join((element.text or "").split())
        tasks.append(
            LcsCmdTask(
                name=name or f"{kind} #{counter}",
                result=result or "",
                detail=_pick(values, _DETAIL_KEYS) or "",
                kind=kind,
            )
        )
    if not tasks:
        raise LcsCmdLogError("XML log contains no Task, Action or Step elements")
    return tasks


# ---------------------------------------------------------------------------------------------- HTML


@dataclass
class _Cell:
    text: list[str] = field(default_factory=list)
    span: int = 1


@dataclass
class _Table:
    order: int
    rows: list[list[_Cell]] = field(default_factory=list)
    row: list[_Cell] | None = None
    cell: _Cell | None = None
    closed: bool = False

    def end_cell(self) -> None:
        if self.cell is not None:
            if self.row is None:
                self.row = []
            self.row.append(self.cell)
            self.cell = None

    def end_row(self) -> None:
        self.end_cell()
        if self.row is not None:
            self.rows.append(self.row)
            self.row = None


class _TableCollector(HTMLParser):
    """Collects every table as rows of cell texts; nested tables are collected on their own."""

    _BREAKS = frozenset({"br", "p", "div", "li", "tr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[_Table] = []
        self._open: list[_Table] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            table = _Table(order=len(self.tables))
            self.tables.append(table)
            self._open.append(table)
            return
        if not self._open:
            return
        table = self._open[-1]
        if tag == "tr":
            table.end_row()
            table.row = []
        elif tag in ("td", "th"):
            table.end_cell()
            span = 1
            for key, value in attrs:
                if key == "colspan" and value and value.strip().isdigit():
                    span = max(1, min(int(value.strip()), 100))
            table.cell = _Cell(span=span)
        elif tag in self._BREAKS and table.cell is not None:
            table.cell.text.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if not self._open:
            return
        table = self._open[-1]
        if tag in ("td", "th"):
            table.end_cell()
        elif tag == "tr":
            table.end_row()
        elif tag == "table":
            table.end_row()
            table.closed = True
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1].cell is not None:
            self._open[-1].cell.text.append(data)


def _cell_texts(row: list[_Cell]) -> list[str]:
    texts: list[str] = []
    for cell in row:
        texts.append(" ".join("".join(cell.text).split()))
        texts.extend([""] * (cell.span - 1))
    return texts


_HTML_NAME_KEYS = ("task", "taskname", "name", "description", "action", "actionname", "step")


def _parse_html(text: str) -> list[LcsCmdTask]:
    collector = _TableCollector()
    try:
        collector.feed(text)
        collector.close()
    except (AssertionError, ValueError, IndexError) as exc:
        # html.parser is lenient but has a few internal assertions on badly broken markup.
        raise LcsCmdLogError(f"HTML log cannot be parsed: {exc}") from None
    tasks: list[LcsCmdTask] = []
    found_table = False
    for table in sorted(collector.tables, key=lambda t: t.order):
        table.end_row()
        header_at = None
        columns: list[str] = []
        for index, row in enumerate(table.rows):
            columns = [_norm(cell) for cell in _cell_texts(row)]
            if "executionresult" in columns:
                header_at = index
                break
        if header_at is None:
            continue
        found_table = True
        if not table.closed:
            raise LcsCmdLogError("HTML log ends inside the Execution Result table; it is truncated")
        result_col = columns.index("executionresult")
        name_col = next((columns.index(k) for k in _HTML_NAME_KEYS if k in columns), None)
        if name_col is None:
            name_col = 0 if result_col != 0 else 1
        detail_col = next((columns.index(k) for k in _DETAIL_KEYS if k in columns), None)
        for row in table.rows[header_at + 1 :]:
            cells = _cell_texts(row)
            if not any(cells):
                continue
            if len(row) == 1 and row[0].span > 1:
                continue  # a section label spanning the table
            if result_col < len(cells) and _norm(cells[result_col]) == "executionresult":
                continue  # header repeated
            result = cells[result_col] if result_col < len(cells) else ""
            name = cells[name_col] if name_col < len(cells) else ""
            detail = cells[detail_col] if detail_col is not None and detail_col < len(cells) else ""
            kind = "action" if columns[name_col : name_col + 1] == ["action"] else "task"
            tasks.append(
                LcsCmdTask(name=name or f"task #{len(tasks) + 1}", result=result, detail=detail, kind=kind)
            )
    if not found_table:
        raise LcsCmdLogError("HTML log has no table with an Execution Result column")
    if not tasks:
        raise LcsCmdLogError("HTML log's Execution Result table has no task rows")
    return tasks


# ---------------------------------------------------------------------------------------------- text

_INLINE_RE = re.compile(
    r"^(?P<before>.*?)\bExecution[\s_-]*Result\s*[:=]\s*(?P<result>.*?)\s*$", re.IGNORECASE
)
_LABEL_RE = re.compile(r"^\s*(?P<label>Task|Action|Step)(?:[\s_-]*Name)?\s*[:=]\s*(?P<name>\S.*?)\s*$", re.I)
_DETAIL_RE = re.compile(
    r"^\s*(?:Details?|Message|Error(?:[\s_-]*Message)?|Reason|Info(?:rmation)?)\s*[:=]\s*(?P<detail>.*?)\s*$",
    re.I,
)
_COLUMN_SPLIT_RE = re.compile(r"\t|\s*\|\s*|\s{2,}")
_SEPARATOR_RE = re.compile(r"^[\s\-=_*#|+.]*$")


def _split_columns(line: str) -> list[str]:
    return [part.strip() for part in _COLUMN_SPLIT_RE.split(line.strip().strip("|"))]


def _parse_text(text: str) -> list[LcsCmdTask]:
    lines = text.splitlines()
    tasks: list[dict[str, str]] = []
    label: tuple[str, str] | None = None  # (kind, name) from the last Task:/Action:/Step: line
    previous = ""  # last non-blank line that was not a marker, label or detail
    pending_detail: list[str] = []
    last_task: dict[str, str] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        stripped = line.strip()
        if not stripped or _SEPARATOR_RE.match(stripped):
            continue
        columns = _split_columns(line)
        normalized = [_norm(c) for c in columns]
        if len(columns) >= 2 and "executionresult" in normalized:
            index = _parse_text_table(lines, index, normalized, tasks)
            last_task = tasks[-1] if tasks else None
            continue
        inline = _INLINE_RE.match(line)
        if inline:
            before = inline.group("before").strip().rstrip(":-–—|.,;").strip()
            kind = "task"
            own_label = _LABEL_RE.match(before) if before else None
            if own_label:
                kind, name = own_label.group("label").lower(), own_label.group("name")
            elif before:
                name = before
            elif label is not None:
                kind, name = label
            else:
                name = previous
            last_task = {
                "name": name or f"task #{len(tasks) + 1}",
                "result": inline.group("result"),
                "detail": " ".join(pending_detail),
                "kind": kind,
            }
            tasks.append(last_task)
            label, previous, pending_detail = None, "", []
            continue
        own_label = _LABEL_RE.match(line)
        if own_label:
            label = (own_label.group("label").lower(), own_label.group("name"))
            last_task = None
            continue
        detail = _DETAIL_RE.match(line)
        if detail:
            if last_task is not None and label is None:
                joined = f"{last_task['detail']} {detail.group('detail')}".strip()
                last_task["detail"] = joined
            else:
                pending_detail.append(detail.group("detail"))
            continue
        previous = stripped
        last_task = None
    if not tasks:
        raise LcsCmdLogError("text log has no 'Execution Result' entries")
    return [LcsCmdTask(t["name"], t["result"], t["detail"], t["kind"]) for t in tasks]


def _parse_text_table(lines: list[str], index: int, header: list[str], tasks: list[dict[str, str]]) -> int:
    result_col = header.index("executionresult")
    name_col = next((header.index(k) for k in _HTML_NAME_KEYS if k in header), 0 if result_col else 1)
    detail_col = next((header.index(k) for k in _DETAIL_KEYS if k in header), None)
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if not stripped:
            break
        index += 1
        if _SEPARATOR_RE.match(stripped):
            continue
        cells = _split_columns(line)
        if len(cells) < 2:
            index -= 1
            break
        tasks.append(
            {
                "name": (cells[name_col] if name_col < len(cells) else "") or f"task #{len(tasks) + 1}",
                "result": cells[result_col] if result_col < len(cells) else "",
                "detail": cells[detail_col] if detail_col is not None and detail_col < len(cells) else "",
                "kind": "task",
            }
        )
    return index


# ---------------------------------------------------------------------------------------------- entry point

_HTML_RE = re.compile(r"<\s*(?:!doctype\s+html|html|table|body)\b", re.IGNORECASE)


def detect_format(text: str) -> LogFormat:
    """Pick the parser: markup that looks like HTML is HTML (XHTML included), other markup XML, else text."""
    head = text.lstrip()
    if head.startswith("<"):
        return LogFormat.HTML if _HTML_RE.search(head) else LogFormat.XML
    return LogFormat.TEXT


def parse_lcscmd_log(data: str | bytes, *, strict: bool = True) -> LcsCmdLog:
    """Parse an LcsCmd log (XML, HTML or text; see the module docstring) into its tasks, in log order.

    With ``strict=True`` any log that cannot be read raises :class:`LcsCmdLogError`. With
    ``strict=False`` nothing is raised: the returned log has no tasks and ``error`` holds the reason,
    which is what a caller building an outcome wants, since an unreadable log is a failed step, not a
    crash.
    """
    raw = data if isinstance(data, str) else ""
    try:
        text = decode_log(data)
        raw = text
        if not text.strip():
            raise LcsCmdLogError("log is empty")
        fmt = detect_format(text)
        parser = {LogFormat.XML: _parse_xml, LogFormat.HTML: _parse_html, LogFormat.TEXT: _parse_text}[fmt]
        return LcsCmdLog(format=fmt, tasks=tuple(parser(text)), raw=text)
    except LcsCmdLogError as exc:
        if strict:
            raise
        return LcsCmdLog(format=None, tasks=(), raw=raw, error=exc.reason)
