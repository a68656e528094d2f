"""What a refused submission says: Flink's reason, not a stack frame (texts as Flink 2.3 answers them)."""

from streampilot.flink.client import _program_error, root_cause

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


UDF_FAILURE = """java.lang.RuntimeException: Failed to close remote bundle
\tat org.apache.flink.streaming.api.runners.python.beam.BeamPythonFunctionRunner.finishBundle(BeamPythonFunctionRunner.java:423)
Caused by: java.util.concurrent.ExecutionException: java.lang.RuntimeException: Error received from SDK harness for instruction 2: Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/apache_beam/runners/worker/sdk_worker.py", line 311, in _execute
    response = task()
  File "/tmp/app-7-v1.py", line 12, in parse
    raise ValueError(f"not a number: {s!r}")
ValueError: not a number: 'x'

\tat java.base/java.util.concurrent.CompletableFuture.reportGet(CompletableFuture.java:396)
Caused by: java.lang.RuntimeException: Error received from SDK harness for instruction 2: Traceback (most recent call last):
  File "/tmp/app-7-v1.py", line 12, in parse
    raise ValueError(f"not a number: {s!r}")
ValueError: not a number: 'x'

\tat org.apache.beam.runners.fnexecution.control.FnApiControlClient$ResponseStreamObserver.onNext(FnApiControlClient.java:180)
\t... 1 more
"""


def test_a_python_functions_error_is_its_own_last_line() -> None:
    assert root_cause(UDF_FAILURE) == "ValueError: not a number: 'x'"


def test_a_java_root_cause_stays_the_innermost_caused_by() -> None:
    assert root_cause(COULD_NOT_EXECUTE) == "java.lang.RuntimeException: Python process exits with code: 1"


def test_a_program_that_starts_no_job_is_told_so_in_one_line() -> None:
    text = (
        "org.apache.flink.runtime.rest.handler.RestHandlerException: No jobs included in application.\n"
        "\tat org.apache.flink.runtime.webmonitor.handlers.JarRunHandler.lambda$handleRequest$1(JarRunHandler.java:120)\n"
    )
    said = _program_error([text])
    assert said is not None and said.startswith("No jobs included in application: the program ended without")
    assert "\tat " not in said
