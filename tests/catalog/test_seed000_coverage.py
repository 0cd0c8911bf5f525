"""Proof that the restart-rule catalog covers every requirement in OCS 2007 Appendix C (seed 000).

The requirements are extracted from the source document (each (service, WMI class, property), each snap-in
setting and exception, and the phrases the ordering rules rest on) into
``tests/data/seed_facts/appendix_c.json``, so the coverage tests run in any checkout. Where the document
itself is beside the checkout (``shared/seeds``, as in CI), one more test extracts it again and compares, so
a rule added to the document but missing from the data still fails here.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from ocsps.catalog import Catalog
from ocsps.plans.restart import plan_restart
from tests.conftest import DATA, seeds_dir

FACTS = DATA / "seed_facts" / "appendix_c.json"
PHRASES = (
    "DBImpExp.exe",
    "log meeting content for compliance",
    "first start the MSSQLServer service",
    "No stop or restart requirements",
)
"""Phrases of the document that ordering rules rest on; the data records in which section each occurs."""

BULLET = re.compile(r"^(?P<indent>\s*)•\s*(?P<text>.+?)\s*$")
SECTION = re.compile(r"^Office Communications Server (?P<name>.+?) service$")


@dataclass
class Section:
    name: str
    wmi: dict[str, set[str] | None] = field(default_factory=dict)  # class -> properties (None = whole)
    excepts: dict[str, str] = field(default_factory=dict)
    snapin: list[str] = field(default_factory=list)
    certificate_exception: bool = False
    lines: list[str] = field(default_factory=list)

    def facts(self) -> dict[str, object]:
        """What the tests need of a section, without the document's prose."""
        text = "\n".join(self.lines)
        data = asdict(self)
        del data["lines"]
        data["wmi"] = {cls: sorted(props) if props is not None else None for cls, props in self.wmi.items()}
        data["mentions"] = [phrase for phrase in PHRASES if phrase in text]
        return data


def extract_facts(text: str) -> list[dict[str, object]]:
    return [section.facts() for section in parse_appendix_c(text)]


def load_facts() -> list[Section]:
    sections = []
    for raw in json.loads(FACTS.read_text(encoding="utf-8"))["sections"]:
        wmi = {cls: set(props) if props is not None else None for cls, props in raw["wmi"].items()}
        section = Section(
            # the recorded phrases stand in for the section's prose
            raw["name"], wmi, raw["excepts"], raw["snapin"], raw["certificate_exception"], raw["mentions"]
        )
        sections.append(section)
    return sections


def parse_appendix_c(text: str) -> list[Section]:
    sections: list[Section] = []
    current: Section | None = None
    mode = ""
    last_class: str | None = None
    for line in text.splitlines():
        head = SECTION.match(line.strip())
        if head and not line.startswith(" "):
            current = Section(head.group("name"))
            sections.append(current)
            mode = ""
            continue
        if current is None or not line.strip():
            continue
        current.lines.append(line)
        if "Exception: If the subject name" in line or "If the subject name and all other" in line:
            current.certificate_exception = True
        if "WMI settings" in line:
            mode = "wmi"
            continue
        if "snap-in" in line or "MMC" in line or "Edge Interfaces tab" in line or "making any change" in line:
            mode = "snapin"
        bullet = BULLET.match(line)
        if not bullet:
            continue
        indent = len(bullet.group("indent"))
        item = bullet.group("text").rstrip(":").rstrip(",").strip()
        if mode == "wmi":
            if item.startswith("MSFT_"):
                cls, _, rest = item.partition(" ")
                last_class = cls.rstrip(":")
                current.wmi[last_class] = None
                if rest:
                    current.excepts[last_class] = rest
            elif last_class is not None and indent > 2:
                props = current.wmi[last_class] or set()
                props |= {p.strip() for p in item.split(",") if p.strip()}
                current.wmi[last_class] = props
        elif mode == "snapin" and not item.startswith("The following"):
            current.snapin.append(item)
    return sections


SERVICE_KEYS = {
    "Front End": "ocs-frontend",
    "IM Conferencing": "ocs-im-conferencing",
    "Telephony Conferencing": "ocs-telephony-conferencing",
    "Web Conferencing": "ocs-web-conferencing",
    "Audio/Video Conferencing": "ocs-av-conferencing",
    "Archiving and CDR": "ocs-archiving-cdr",
    "Mediation": "ocs-mediation",
    "Address Book": "ocs-address-book",
    "Access Edge": "ocs-access-edge",
    "Web Conferencing Edge": "ocs-web-conferencing-edge",
    "Audio/Video Edge": "ocs-av-edge",
    "Audio/Video Authentication": "ocs-av-authentication",
}


@pytest.fixture(scope="module")
def sections() -> list[Section]:
    found = load_facts()
    assert [s.name for s in found] == list(SERVICE_KEYS), "the document's service list changed"
    return found


def test_recorded_facts_match_the_document() -> None:
    folder = seeds_dir()
    if folder is None:
        pytest.skip("shared/seeds is not beside this checkout: the recorded facts are used as they are")
    (path,) = sorted(Path(folder).glob("000_*.txt"))
    recorded = json.loads(FACTS.read_text(encoding="utf-8"))["sections"]
    assert extract_facts(path.read_text(encoding="utf-8")) == recorded


def test_every_wmi_requirement_is_a_catalog_rule(catalog: Catalog, sections: list[Section]) -> None:
    checked = 0
    for section in sections:
        key = SERVICE_KEYS[section.name]
        for cls, props in section.wmi.items():
            rules = [r for r in catalog.rules if r.service == key and r.wmi_class == cls]
            assert rules, f"{section.name}: no rule for {cls}"
            if props is None:
                assert all(not r.properties for r in rules), f"{section.name}: {cls} is a whole-class rule"
            else:
                named = {p for r in rules for p in r.properties}
                assert props == named, f"{section.name}: {cls} properties differ: {props ^ named}"
            checked += 1
    assert checked == 23  # (service, class) pairs in Appendix C


def test_every_exception_is_data(catalog: Catalog, sections: list[Section]) -> None:
    for section in sections:
        key = SERVICE_KEYS[section.name]
        for cls, text in section.excepts.items():
            (rule,) = [r for r in catalog.rules if r.service == key and r.wmi_class == cls]
            if "AP or DP prefix" in text:
                assert set(rule.except_prefixes) == {"AP", "DP"}
            else:
                listed = set(re.findall(r"[A-Z][A-Za-z]+", text.replace("except for", "")))
                assert set(rule.except_properties) == listed - {"or"}
        if section.certificate_exception:
            assert any(r.certificate_exception for r in catalog.rules if r.service == key), section.name


def test_every_snapin_setting_is_data(catalog: Catalog, sections: list[Section]) -> None:
    labels = {re.sub(r"[^a-z0-9]", "", s.label.casefold()): s for s in catalog.snapin_settings.values()}
    for section in sections:
        key = SERVICE_KEYS[section.name]
        for item in section.snapin:
            folded = re.sub(r"[^a-z0-9]", "", item.split(".")[0].casefold())
            setting = labels.get(folded)
            if setting is None:  # certificate bullets are phrased "Certificate for this server. Exception..."
                assert folded.startswith("certificateforthisserver"), (
                    f"{section.name}: {item!r} not in catalog"
                )
                setting = catalog.snapin_settings["server-certificate"]
            assert any(setting.id in r.snapin for r in catalog.rules if r.service == key), (
                section.name,
                item,
            )


def test_edge_interface_paragraphs_are_rules(catalog: Catalog, sections: list[Section]) -> None:
    for section in sections:
        if "Edge" not in section.name and "Authentication" not in section.name:
            continue
        key = SERVICE_KEYS[section.name]
        assert any(r.snapin for r in catalog.rules if r.service == key), section.name


def test_stop_tasks_and_ordering_rules(catalog: Catalog, sections: list[Section]) -> None:
    by_name = {s.name: "\n".join(s.lines) for s in sections}
    assert "DBImpExp.exe" in by_name["Front End"]
    assert plan_restart(["dbimpexp-export"]).services[0].action == "stop"
    assert "log meeting content for compliance" in by_name["Web Conferencing"]
    assert plan_restart(["meeting-compliance"]).services[0].action == "stop-then-start"
    assert "first start the MSSQLServer service" in by_name["Archiving and CDR"]
    plan = plan_restart(["move-archiving-database"])
    starts = [s.service.key for s in plan.steps if s.verb == "start"]
    assert starts == ["MSSQLServer", "ocs-archiving-cdr"]
    assert "No stop or restart requirements" in by_name["Address Book"]
    assert "ocs-address-book" in catalog.no_requirements
    assert not [r for r in catalog.rules if r.service == "ocs-address-book"]
