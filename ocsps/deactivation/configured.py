"""The LcsCmd facts every caller runs with: the catalog's, corrected by the config file's ``[lcscmd]`` table.

One function for the command line, the Ansible modules and the preflight checks, so that a corrected
``[lcscmd] path`` (or any other correction) is honoured the same way by a plan, a run and the
``deactivation-ready`` check. Kept apart from :mod:`ocsps.deactivation.facts` because reading the config
file reaches :mod:`ocsps.remote.profiles`, which itself checks the ``[lcscmd]`` table with the facts module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ocsps.deactivation.facts import LcsCmdFacts, load_lcscmd_facts

__all__ = ["configured_lcscmd_facts", "configured_lcscmd_locations"]


def configured_lcscmd_facts(env: Mapping[str, str] | None = None) -> LcsCmdFacts:
    """The catalog's LcsCmd facts with the ``[lcscmd]`` corrections of the config file ``env`` selects.

    ``env`` defaults to the process environment (``OCSPS_CONFIG`` names the file, as for every command).
    """
    from ocsps.remote.profiles import find_config

    config = find_config(dict(os.environ if env is None else env))
    return load_lcscmd_facts(overrides=config.lcscmd if config is not None and config.lcscmd else None)


def configured_lcscmd_locations(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Where the config file's ``[lcscmd] path`` says LCSCmd.exe is, as the one place to look; empty when
    the file names no path (then the catalog's known locations apply, as for a deactivation run)."""
    facts = configured_lcscmd_facts(env)
    return facts.locations if "path" in facts.overridden else ()
