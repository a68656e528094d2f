"""Runs a PyFlink script as its own ``__main__`` inside Flink's PythonDriver, and says why it failed.

Flink's PythonDriver answers a failing script with "Python process exits with code: 1" and writes the
traceback to the JobManager's log only. This launcher runs the user's script unchanged (same
``__main__``, ``__file__``, ``sys.argv`` and line numbers) and, when it raises, writes the reason to a
file streampilot reads: the innermost Java cause of a Py4J error, else the Python exception line,
and the script's line where it happened.

Usage (by streampilot): ``python pyflink_launcher.py <script> <error-file> [script args...]``.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
from typing import Any


def java_root(exc: BaseException) -> str | None:
    """The innermost cause of a Java exception raised through Py4J, as Java prints it."""
    java: Any = getattr(exc, "java_exception", None)
    if java is None:
        return None
    try:
        while java.getCause() is not None:
            java = java.getCause()
        return str(java.toString())
    except Exception:  # the gateway may be gone already
        return None


def reason(exc: BaseException) -> str:
    said = java_root(exc)
    if said:
        return said
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]


def script_line(exc: BaseException, script: str) -> int | None:
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == script:
            line = frame.lineno
    return line


def main() -> None:
    script, error_file = sys.argv[1], sys.argv[2]
    sys.argv = [script, *sys.argv[3:]]
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as "python script.py" would have it
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            with open(error_file, "w", encoding="utf-8") as f:
                json.dump({"message": f"the script exited with code {exc.code}", "line": None}, f)
        raise
    except BaseException as exc:
        with open(error_file, "w", encoding="utf-8") as f:
            json.dump({"message": reason(exc), "line": script_line(exc, script)}, f)
        raise


if __name__ == "__main__":
    main()
