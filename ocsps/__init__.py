"""ocsps: safe service and role operations for OCS 2007/R2, Lync Server and Skype for Business Server."""

from __future__ import annotations

__version__ = "0.1.0"
