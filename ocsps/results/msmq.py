"""QueuePrivacy: the Message Queuing facts the archiving preflight checks rely on.

The archiving rules (destination queue never None; not Body when Archiving Server and Front End share a
computer; MSMQ installed with Active Directory integration) need four facts per computer: is MSMQ
installed, is it AD-integrated, does the queue exist, and what is its privacy level.

Shapes accepted:

* our templates: a PSCustomObject with ComputerName, QueuePath, PrivacyLevel, MsmqInstalled,
  AdIntegrated, Exists;
* ``System.Messaging.MessageQueue`` (PowerShell 2.0 hosts): Path / QueueName / FormatName, MachineName,
  and ``EncryptionRequired`` whose values None / Optional / Body are the same three levels;
* Get-MsmqQueue (Server 2012 and later): QueueName, PrivacyLevel.

A real queue object proves that MSMQ is installed and that the queue exists, so those two facts are
inferred from it when the object does not say so; whether MSMQ is AD-integrated cannot be inferred and
stays None (unknown) unless the template reports it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from ocsps.results.base import (
    CoercionError,
    ParseError,
    PropertyReader,
    enum_token,
    host_name,
    no_extra,
)

__all__ = ["PrivacyLevel", "QueuePrivacy", "parse_queue_privacy"]

KIND = "QueuePrivacy"


class PrivacyLevel(StrEnum):
    """MSMQ privacy level; same names and numbers in System.Messaging.EncryptionRequired and MQ_PRIV_LEVEL."""

    NONE = "None"
    OPTIONAL = "Optional"
    BODY = "Body"

    @classmethod
    def from_token(cls, token: str | int) -> PrivacyLevel:
        """Map a name (also ``MQ_PRIV_LEVEL_BODY`` style) or number; anything else raises CoercionError.

        Unlike a service state, an unknown privacy level is refused: the preflight rules are about
        exactly these three values, and guessing one would pass or fail a check on no evidence.
        """
        if isinstance(token, int):
            by_number = {0: cls.NONE, 1: cls.OPTIONAL, 2: cls.BODY}
            if token in by_number:
                return by_number[token]
            raise CoercionError(f"has value {token}, expected a privacy level 0, 1 or 2")
        word = re.sub(r"[\s_-]+", "", token).casefold().removeprefix("mqprivlevel")
        for level in cls:
            if level.value.casefold() == word:
                return level
        raise CoercionError(f"has value {token!r}, expected None, Optional or Body")


def _privacy(value: object) -> PrivacyLevel:
    token = enum_token(value)
    if token is None:
        raise CoercionError("is empty, expected None, Optional or Body")
    return PrivacyLevel.from_token(token)


@dataclass(frozen=True)
class QueuePrivacy:
    """MSMQ and destination-queue facts for one computer.

    ``privacy_level`` is None when the queue does not exist or MSMQ is missing; ``ad_integrated`` is
    None when it was not reported (unknown is not the same as "no").
    """

    queue_path: str
    msmq_installed: bool
    exists: bool
    privacy_level: PrivacyLevel | None = None
    ad_integrated: bool | None = None
    computer: str | None = None
    extra: Mapping[str, object] = field(default_factory=no_extra, hash=False)


def parse_queue_privacy(obj: object) -> QueuePrivacy:
    """Build a :class:`QueuePrivacy` from template output, a MessageQueue or a Get-MsmqQueue object.

    Reads: QueuePath, Path, QueueName or FormatName (required); PrivacyLevel or EncryptionRequired;
    MsmqInstalled; AdIntegrated; Exists; ComputerName, PSComputerName or MachineName. MsmqInstalled is
    required unless a privacy level is present; Exists is required unless a privacy level is present or
    MSMQ is reported missing (no queue can exist then).
    """
    reader = PropertyReader(obj, KIND)
    queue_path = reader.required_text("QueuePath", "Path", "QueueName", "FormatName")
    privacy: PrivacyLevel | None = None
    found = reader.lookup("PrivacyLevel", "EncryptionRequired")
    if found is not None and found[1] is not None:
        privacy = reader.convert(found[0], found[1], _privacy)
    installed = reader.boolean("MsmqInstalled")
    if installed is None:
        if privacy is None:
            raise ParseError(KIND, "MsmqInstalled", "is missing and no privacy level was reported")
        installed = True
    exists = reader.boolean("Exists")
    if exists is None:
        if not installed:
            exists = False
        elif privacy is None:
            raise ParseError(KIND, "Exists", "is missing and no privacy level was reported")
        else:
            exists = True
    return QueuePrivacy(
        queue_path=queue_path,
        msmq_installed=installed,
        exists=exists,
        privacy_level=privacy,
        ad_integrated=reader.boolean("AdIntegrated"),
        computer=host_name(reader.text("ComputerName", "PSComputerName", "MachineName")),
        extra=reader.extra(),
    )
