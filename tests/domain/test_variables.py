from streampilot.domain.apps import AppKind, AppSpec
from streampilot.domain.variables import mask, references, resolve, undefined, used_names


def test_references_and_escapes() -> None:
    text = "a ${x}\n  b $${not_me} ${y.z}"
    assert [(r.name, r.line, r.column) for r in references(text)] == [("x", 1, 3), ("y.z", 2, 16)]


def test_resolve_replaces_in_sql_properties_and_args_only() -> None:
    spec = AppSpec(
        kind=AppKind.SQL, sql="SET 'k' = '${x}'; $${lit}", properties={"p": "${x}-${y}", "n": 3}, args=["${y}"]
    )
    assert used_names(spec) == {"x", "y"}
    out = resolve(spec, {"x": "1", "y": "2"})
    assert (out.sql, out.properties, out.args) == ("SET 'k' = '1'; ${lit}", {"p": "1-2", "n": 3}, ["2"])
    assert [p.field for p in undefined(spec, ["x"])] == ["properties.p", "args.0"]
    assert [p.message for p in undefined(AppSpec(kind=AppKind.SQL, sql="${1a}"), [])] == [
        "${1a} is not a variable name"
    ]


def test_mask_hides_every_occurrence_longest_first() -> None:
    assert mask({"a": "u:pw-long pw-long", "b": "pw"}, ["pw", "pw-long"]) == {"a": "u:****** ******", "b": "******"}
