"""What a refused submission says: Flink's reason, not a stack frame (texts as Flink 2.3 answers them)."""

from streampilot.flink.client import _program_error

COULD_NOT_EXECUTE = """org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application.
\tat org.apache.flink.runtime.webmonitor.handlers.JarRunHandler.lambda$handleRequest$1(JarRunHandler.java:114)
\tat java.base/java.lang.Thread.run(Thread.java:840)
Caused by: java.util.concurrent.CompletionException: org.apache.flink.client.program.ProgramAbortException: \
java.lang.RuntimeException: Python process exits with code: 1
\tat java.base/java.util.concurrent.CompletableFuture.encodeThrowable(CompletableFuture.java:315)
Caused by: org.apache.flink.client.program.ProgramAbortException: java.lang.RuntimeException: Python process exits \
with code: 1
\tat org.apache.flink.client.python.PythonDriver.main(PythonDriver.java:140)
Caused by: java.lang.RuntimeException: Python process exits with code: 1
\tat org.apache.flink.client.python.PythonDriver.main(PythonDriver.java:130)
\t... 13 more
"""

MAIN_METHOD = """org.apache.flink.client.program.ProgramInvocationException: The main method caused an error: \
streampilot statement 3 failed: Object 'nope' not found
\tat org.apache.flink.client.program.PackagedProgram.callMainMethod(PackagedProgram.java:373)
"""


def test_the_innermost_cause_when_the_headline_says_nothing() -> None:
    said = _program_error([COULD_NOT_EXECUTE])
    assert said == "java.lang.RuntimeException: Python process exits with code: 1"


def test_the_programs_own_words_when_the_headline_has_them() -> None:
    assert _program_error([MAIN_METHOD]) == "streampilot statement 3 failed: Object 'nope' not found"
