"""How the gateway says why its shared JVM ended."""

from __future__ import annotations

import signal

from prophecy_jupyter.gateway.spark_host import describe_exit


def test_an_exit_is_said_with_its_code_its_signal_or_its_likely_cause():
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(52).startswith("exited with code 52, Spark's code for a JVM out of memory")
    assert describe_exit(-signal.SIGSEGV) == "was killed by SIGSEGV"
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL (the system may have run out of memory)"
    assert describe_exit(-200) == "was killed by signal 200"
