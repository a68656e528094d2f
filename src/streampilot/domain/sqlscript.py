"""Splitting and classifying a Flink SQL script, and mapping Flink's error positions back to it.

The script is split here (not in the JVM) so that every problem found before submission can name
its line, and so the runner inside Flink gets statements already classified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from streampilot.domain.errors import SpecError


class StatementKind(StrEnum):
    SET = "set"
    DML = "dml"
    DDL = "ddl"


@dataclass(frozen=True)
class Statement:
    kind: StatementKind
    text: str
    line: int  # 1-based line of the statement's first character in the script
    column: int  # 1-based column of that character
    key: str | None = None  # SET only
    value: str | None = None  # SET only


_SET = re.compile(r"^SET\s+'(?P<k>(?:[^']|'')+)'\s*=\s*'(?P<v>(?:[^']|'')*)'\s*$", re.IGNORECASE | re.DOTALL)
_FIRST_WORDS = re.compile(r"^\s*([A-Za-z]+)(?:\s+([A-Za-z]+))?(?:\s+([A-Za-z]+))?")
# Flink's documented form: EXECUTE STATEMENT SET BEGIN INSERT ...; INSERT ...; END; -- split on ';', the
# opening words come with the first INSERT.
_EXECUTE_SET = re.compile(r"^EXECUTE\s+STATEMENT\s+SET\s+BEGIN\b\s*", re.IGNORECASE)
# CREATE TABLE ... AS <query> (CTAS), outside quotes: AS followed by SELECT/WITH/VALUES after the column list.
_CTAS = re.compile(r"^\s*(CREATE\s+(OR\s+REPLACE\s+)?|REPLACE\s+)TABLE\b.*\bAS\s+(SELECT|WITH|VALUES)\b", re.I | re.S)
_DDL_WORDS = {"CREATE", "DROP", "ALTER", "USE", "LOAD", "UNLOAD", "SHOW", "DESCRIBE", "DESC", "ANALYZE"}


def _raw_statements(script: str) -> list[tuple[str, int, int]]:
    """Split on ';' outside quotes and comments; returns (text, line, column) without comments."""
    out: list[tuple[str, int, int]] = []
    buf: list[str] = []
    start: tuple[int, int] | None = None
    i, line, col = 0, 1, 1
    n = len(script)
    quote: str | None = None
    while i < n:
        ch = script[i]
        nxt = script[i + 1] if i + 1 < n else ""
        if quote is None and ch == "-" and nxt == "-":
            while i < n and script[i] != "\n":
                i += 1
            continue
        if quote is None and ch == "/" and nxt == "*":
            end = script.find("*/", i + 2)
            end = n if end < 0 else end + 2
            for c in script[i:end]:
                line, col = (line + 1, 1) if c == "\n" else (line, col + 1)
            buf.append(" ")
            i = end
            continue
        if quote is None and ch == ";":
            text = "".join(buf).strip()
            if text and start is not None:
                out.append((text, *start))
            buf, start = [], None
        else:
            if quote is None and ch in "'\"`":
                quote = ch
            elif quote == ch:
                quote = None
            if start is None and not ch.isspace():
                start = (line, col)
            buf.append(ch)
        line, col = (line + 1, 1) if ch == "\n" else (line, col + 1)
        i += 1
    if quote is not None:
        raise SpecError.one("sql", f"unterminated quoted text ({quote}) at the end of the script", line, col)
    text = "".join(buf).strip()
    if text and start is not None:
        out.append((text, *start))
    return out


def parse_script(script: str) -> list[Statement]:
    """Classify a script's statements; raise SpecError naming the line of the first problem."""
    statements: list[Statement] = []
    for raw, first_line, first_col in _raw_statements(script):
        text, line, col = _after_set_opening(raw, first_line, first_col)
        if not text:
            continue
        words = [w.upper() for w in (_FIRST_WORDS.match(text) or _EMPTY).groups() if w]
        first = words[0] if words else ""
        if words[:3] == ["BEGIN", "STATEMENT", "SET"] or words == ["END"]:
            continue  # every INSERT already goes into one statement set
        if first == "SET":
            m = _SET.match(text)
            if not m:
                raise SpecError.one("sql", "SET must look like SET 'key' = 'value'", line, col)
            key, value = m.group("k").replace("''", "'"), m.group("v").replace("''", "'")
            statements.append(Statement(StatementKind.SET, text, line, col, key, value))
        elif first == "RESET":
            raise SpecError.one("sql", "RESET is not supported in an application script; remove it", line, col)
        elif first == "INSERT" or (first == "EXECUTE" and len(words) > 1 and words[1] == "INSERT"):
            body = text if first == "INSERT" else text[len("EXECUTE") :].strip()
            statements.append(Statement(StatementKind.DML, body, line, col))
        elif first in ("SELECT", "WITH", "VALUES", "EXPLAIN"):
            raise SpecError.one(
                "sql",
                f"a {first} statement has no sink in a deployed job; write its result with INSERT INTO <table>",
                line,
                col,
            )
        elif first in ("CREATE", "REPLACE") and _CTAS.search(text):
            # CREATE [OR REPLACE] TABLE ... AS SELECT writes rows: it joins the script's one job.
            statements.append(Statement(StatementKind.DML, text, line, col))
        elif first == "ADD" and words[1:2] == ["JAR"]:
            # ADD JAR '<path or URI>': Flink puts the jar on the script's class path and ships it with the job.
            statements.append(Statement(StatementKind.DDL, text, line, col))
        elif first in _DDL_WORDS:
            statements.append(Statement(StatementKind.DDL, text, line, col))
        else:
            raise SpecError.one("sql", f"unsupported statement starting with {first or text[:20]!r}", line, col)
    if not any(s.kind == StatementKind.DML for s in statements):
        raise SpecError.one(
            "sql", "the script has no INSERT (or CREATE TABLE ... AS SELECT) statement, so there is no job to run"
        )
    return statements


def _after_set_opening(text: str, line: int, col: int) -> tuple[str, int, int]:
    """A statement without the EXECUTE STATEMENT SET BEGIN that opens a set, and where it then starts."""
    m = _EXECUTE_SET.match(text)
    if not m:
        return text, line, col
    prefix = text[: m.end()]
    newlines = prefix.count("\n")
    if newlines:
        return text[m.end() :], line + newlines, len(prefix) - prefix.rfind("\n")
    return text[m.end() :], line, col + len(prefix)


class _Empty:
    def groups(self) -> tuple[str, ...]:
        return ()


_EMPTY = _Empty()

_POSITION = re.compile(r"line (\d+), column (\d+)")
_STATEMENT_NO = re.compile(r"streampilot statement (\d+) failed: (.*)", re.DOTALL)


_CAUSED_BY = " | caused by: "
_SHORT_PREFIX = 40


def _one_line(text: str) -> str:
    """Flink's multi-line message on one line; a list after "...:" becomes comma-separated."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    out: list[str] = []
    listing = False
    for ln in lines:
        if listing and out:
            out[-1] += (" " if out[-1].endswith(":") else ", ") + ln
        else:
            out.append(ln)
            listing = ln.endswith(":")
    return " ".join(out)


def root_first(message: str) -> str:
    """The runner's chain of causes ("outer | caused by: inner ...") as the root cause first, once.

    Each wrapper repeats what it wraps; the innermost cause says what is wrong. The outermost message
    follows in parentheses only when it adds something (which table, which statement kind).
    """
    parts = [p.strip() for p in message.split(_CAUSED_BY) if p.strip()]
    if len(parts) < 2:
        return _one_line(message)
    root = _one_line(parts[-1])
    outer = _one_line(parts[0].split("\n\n")[0])
    if outer.endswith(root) and len(outer) - len(root) <= _SHORT_PREFIX:
        return outer  # "SQL parse failed. <root>": the kind of failure is worth its few words
    if root.split(". ")[0] in outer or outer in root:
        return root
    return f"{root} ({outer})"


def locate_flink_error(statements: list[Statement], message: str) -> tuple[str, int | None, int | None]:
    """Turn the runner's "statement N failed: ... at line L, column C" into script coordinates."""
    m = _STATEMENT_NO.search(message)
    if not m:
        return message, None, None
    index, raw = int(m.group(1)) - 1, m.group(2).strip()
    text = root_first(raw)
    if not 0 <= index < len(statements):
        return text, None, None
    stmt = statements[index]
    pos = _POSITION.search(raw)
    if not pos:
        return text, stmt.line, stmt.column
    rel_line, rel_col = int(pos.group(1)), int(pos.group(2))
    line = stmt.line + rel_line - 1
    column = stmt.column + rel_col - 1 if rel_line == 1 else rel_col
    return text, line, column
