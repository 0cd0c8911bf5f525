"""The collection's connection options are generated from the library's, and kept current."""

from __future__ import annotations

import importlib.util
import runpy
import sys

from tests.conftest import ROOT


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "gen_ansible_connection", ROOT / "scripts" / "gen_ansible_connection.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_doc_fragment_and_argument_spec_are_current() -> None:
    gen = _generator()
    assert gen.FRAGMENT.read_text(encoding="utf-8") == gen.fragment_text(), (
        "run python scripts/gen_ansible_connection.py"
    )
    assert gen.SPEC.read_text(encoding="utf-8") == gen.spec_text(), (
        "run python scripts/gen_ansible_connection.py"
    )


def test_every_library_option_reaches_the_modules() -> None:
    from ocsps.remote.settings import OPTIONS

    spec = runpy.run_path(str(_generator().SPEC))["CONNECTION_ARGUMENT_SPEC"]
    assert isinstance(spec, dict)
    assert set(OPTIONS) <= set(spec)
    assert spec["password"] == {"type": "str", "no_log": True}
