"""Manifests as the JAR File Specification writes them (72-byte lines, continuations)."""

from streampilot.domain.manifest import main_attributes, main_class

LONG = (
    "Manifest-Version: 1.0\r\n"
    "Created-By: 17.0.15 (Debian)\r\n"
    "Main-Class: com.example.streaming.pipelines.enrichment.OrderEnrichmentJ\r\n"
    " obWithAVeryLongName\r\n"
    "main-class-path: ignored\r\n"
    "\r\n"
    "Name: com/example/Other.class\r\n"
    "Main-Class: not.the.main.Section\r\n"
)


def test_a_long_main_class_continues_on_the_next_line() -> None:
    assert main_class(LONG) == "com.example.streaming.pipelines.enrichment.OrderEnrichmentJobWithAVeryLongName"


def test_only_the_main_section_counts_and_names_ignore_case() -> None:
    attributes = main_attributes(LONG)
    assert attributes["manifest-version"] == "1.0"
    assert main_class("MAIN-CLASS: a.B\n") == "a.B"
    assert main_class("Manifest-Version: 1.0\n\nMain-Class: a.B\n") is None
