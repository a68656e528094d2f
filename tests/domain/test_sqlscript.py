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


def test_flinks_documented_statement_set_form() -> None:
    """EXECUTE STATEMENT SET BEGIN ... END; as Flink's SQL documentation writes it: one job, two INSERTs."""
    script = (
        "CREATE TABLE a (s STRING) WITH ('connector' = 'datagen');\n"
        "EXECUTE STATEMENT SET\n"
        "BEGIN\n"
        "  INSERT INTO b SELECT s FROM a;\n"
        "  INSERT INTO c SELECT s FROM a;\n"
        "END;\n"
    )
    stmts = parse_script(script)
    assert [s.kind for s in stmts] == [StatementKind.DDL, StatementKind.DML, StatementKind.DML]
    assert stmts[1].text == "INSERT INTO b SELECT s FROM a" and (stmts[1].line, stmts[1].column) == (4, 3)
    assert (stmts[2].line, stmts[2].column) == (5, 3)
    one_line = parse_script("EXECUTE STATEMENT SET BEGIN INSERT INTO b SELECT 1; END;")
    assert [(s.text, s.column) for s in one_line] == [("INSERT INTO b SELECT 1", 29)]
    with pytest.raises(SpecError, match="no INSERT"):
        parse_script("EXECUTE STATEMENT SET BEGIN END;")


def test_flinks_reason_comes_first_and_once() -> None:
    """Messages as the SQL runner reports Flink 2.3's errors: wrappers repeat what they wrap."""
    stmts = parse_script("CREATE TABLE a (x INT);\nCREATE TABLE b (x INT);\nINSERT INTO b SELECT idd FROM a;")
    validation = (
        "streampilot statement 3 failed: SQL validation failed. SQL validation failed. From line 1, column 24 to "
        "line 1, column 26: Column 'idd' not found in any table | caused by: SQL validation failed. From line 1, "
        "column 24 to line 1, column 26: Column 'idd' not found in any table | caused by: From line 1, column 24 "
        "to line 1, column 26: Column 'idd' not found in any table | caused by: Column 'idd' not found in any table"
    )
    assert locate_flink_error(stmts, validation) == ("Column 'idd' not found in any table", 3, 24)
    connector = (
        "streampilot statement 3 failed: Unable to create a source for reading table "
        "'default_catalog.default_database.a'.\n\nTable options are:\n\n'connector'='kafkaa' | caused by: Cannot "
        "discover a connector using option: 'connector'='kafkaa' | caused by: Could not find any factory for "
        "identifier 'kafkaa' that implements 'org.apache.flink.table.factories.DynamicTableFactory' in the "
        "classpath.\n\nAvailable factory identifiers are:\n\nblackhole\ndatagen\nprint"
    )
    text, line, _ = locate_flink_error(stmts, connector)
    assert text == (
        "Could not find any factory for identifier 'kafkaa' that implements "
        "'org.apache.flink.table.factories.DynamicTableFactory' in the classpath. Available factory identifiers "
        "are: blackhole, datagen, print (Unable to create a source for reading table "
        "'default_catalog.default_database.a'.)"
    )
    assert line == 3
    parse = "streampilot statement 3 failed: SQL parse failed. Non-query expression encountered in illegal context"
    assert (
        locate_flink_error(stmts, parse)[0] == "SQL parse failed. Non-query expression encountered in illegal context"
    )


def test_create_table_as_select_writes_rows_so_it_is_the_job() -> None:
    stmts = parse_script(
        "CREATE TABLE a (x INT) WITH ('connector' = 'datagen');\n"
        "CREATE TABLE b WITH ('connector' = 'blackhole')\nAS SELECT x FROM a;\n"
        "CREATE OR REPLACE TABLE c AS SELECT x FROM a;"
    )
    assert [s.kind for s in stmts] == [StatementKind.DDL, StatementKind.DML, StatementKind.DML]


def test_add_jar_is_part_of_the_script() -> None:
    statements = parse_script("ADD JAR '/opt/udfs/udf.jar';\nINSERT INTO snk SELECT * FROM src;")
    assert [(s.kind, s.line) for s in statements] == [(StatementKind.DDL, 1), (StatementKind.DML, 2)]
