"""URLs as they may be shown: credentials in them (``scheme://user:password@host``) never are."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(//)[^/@\s]*@")
_PASSWORD = re.compile(r"(//[^/@:\s]*:)[^/@\s]*@")


def without_credentials(url: str) -> str:
    """``http://user:pw@host/x`` -> ``http://***@host/x``: who and the secret are both hidden."""
    return _USERINFO.sub(r"\1***@", url)


def without_password(url: str) -> str:
    """``postgresql://user:pw@host/db`` -> ``postgresql://user:***@host/db``: the user stays (it helps)."""
    return _PASSWORD.sub(r"\1***@", url)
