"""Every report test gets its own audit log and config file, so nothing touches the operator's."""

from __future__ import annotations

from tests.localstate.conftest import _no_remembered_secrets, _private_state

__all__ = ["_no_remembered_secrets", "_private_state"]
