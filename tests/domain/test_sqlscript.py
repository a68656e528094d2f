"""Splitting and classifying SQL scripts, and pointing Flink's errors at script lines."""

import pytest

from streampilot.domain.errors import SpecError
from streampilot.domain.sqlscript import StatementKind, locate_flink_error, parse_script

SCRIPT = """-- a comment; with a semicolon
SET 'pipeline.max-parallelism' = '64';
CREATE TABLE a (s STRING) WITH ('connector' = 'datagen', 'fields.s.length' = '3;');
/* block; comment */
BEGIN STATEMENT SET;
INSERT INTO b SELECT s FROM a;
INSERT INTO c SELECT s FROM a;
END;
"""


def test_statements_are_split_outside_quotes_and_comments() -> None:
    stmts = parse_script(SCRIPT)
    assert [s.kind for s in stmts] == [StatementKind.SET, StatementKind.DDL, StatementKind.DML, StatementKind.DML]
    assert stmts[0].key == "pipeline.max-parallelism" and stmts[0].value == "64"
    assert "'3;'" in stmts[1].text
    assert [s.line for s in stmts] == [2, 3, 6, 7]


def test_script_without_insert_is_refused() -> None:
    with pytest.raises(SpecError, match="no INSERT"):
        parse_script("CREATE TABLE a (x INT) WITH ('connector'='datagen');")


def test_select_is_refused_with_its_line() -> None:
    with pytest.raises(SpecError) as err:
        parse_script("CREATE TABLE a (x INT);\n\nSELECT * FROM a;\nINSERT INTO b SELECT 1;")
    assert err.value.problems[0].line == 3
    assert "INSERT INTO" in err.value.problems[0].message


def test_malformed_set_is_refused() -> None:
    with pytest.raises(SpecError, match="SET 'key'"):
        parse_script("SET parallelism = 2;\nINSERT INTO b SELECT 1;")


def test_unterminated_quote_is_refused() -> None:
    with pytest.raises(SpecError, match="unterminated"):
        parse_script("INSERT INTO b SELECT 'oops;")


def test_flink_position_maps_to_script_line_and_column() -> None:
    stmts = parse_script("CREATE TABLE a (x INT);\n\n  INSERT INTO b\n  SELECTT x FROM a;")
    message = 'streampilot statement 2 failed: SQL parse failed. Encountered "x" at line 2, column 11.'
    text, line, column = locate_flink_error(stmts, message)
    assert (line, column) == (4, 11)
    assert text.startswith("SQL parse failed")
    _, line, column = locate_flink_error(stmts, "streampilot statement 2 failed: Encountered at line 1, column 5")
    assert (line, column) == (3, 7)
