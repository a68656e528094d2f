"""A jar's META-INF/MANIFEST.MF read as the JAR File Specification says.

Lines are at most 72 bytes; a longer value goes on in continuation lines that begin with a single
space, which is dropped when the lines are joined. Headers are case-insensitive. Only the main
section (up to the first empty line) is read: it holds Main-Class.
"""

from __future__ import annotations


def main_attributes(text: str) -> dict[str, str]:
    """The main section's attributes, names lower-cased, continuation lines joined."""
    attributes: dict[str, str] = {}
    name: str | None = None
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw == "":
            break  # the end of the main section
        if raw.startswith(" ") and name is not None:
            attributes[name] += raw[1:]
            continue
        key, sep, value = raw.partition(":")
        if not sep:
            continue
        name = key.strip().lower()
        attributes[name] = value.removeprefix(" ")
    return attributes


def main_class(text: str) -> str | None:
    return main_attributes(text).get("main-class", "").strip() or None
