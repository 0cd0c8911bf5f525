"""What a lab account may look like, checked alike wherever a lab password enters (topology file or option).

Kept apart from :mod:`ocsps.lab.auth` so that validating a topology does not load the NTLM machinery.
"""

from __future__ import annotations


def credential_problem(username: str, password: str) -> str | None:
    """Why a lab account cannot be served (one line, without the password), or ``None``.

    pyspnego's NTLM credential store splits each line on ``:`` and ignores lines without exactly three
    fields, so such a password would make every NTLM login fail. The rule holds for every auth mode, so a
    topology valid for one mode is valid for all.
    """
    user = username.rpartition("\\")[2]
    if not user:
        return "the lab user name is empty"
    for what, value in (("user name", username), ("password", password)):
        if ":" in value or "\r" in value or "\n" in value:
            return f"the lab {what} must not contain ':' or line breaks"
    return None
