"""Background servers of the slow tests (a Thrift JDBC server, a standalone cluster): each in its
own process group on 127.0.0.1, waited for with a deadline, always stopped as a whole group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pyspark

from orders_etl.session import archive_flags, class_archive, driver_java_options

SPARK_HOME = Path(pyspark.__file__).resolve().parent
SPARK_BIN = SPARK_HOME / "bin"


def archive_java_options() -> str:
    """The class archive's JVM flags as one option string ("" without an archive): mapped by any
    JVM whose class path is the one the archive was written with (a spark-submit driver in client
    mode, a standalone master, worker or executor), ignored quietly by any other."""
    return driver_java_options(None, *archive_flags(class_archive())) or ""


def spark_env(**extra: str) -> dict[str, str]:
    """The environment of a Spark process started from a test: this venv's pyspark as
    SPARK_HOME and its Python for drivers and workers, bound to 127.0.0.1, no gateway of the
    test's own session. spark-submit and the standalone daemons map the class archive `make
    setup` wrote, as a local `orders-etl` start does: the same JVMs, started sooner."""
    options = archive_java_options()
    env = {
        "SPARK_SUBMIT_OPTS": options,
        "SPARK_DAEMON_JAVA_OPTS": options,
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "PYSPARK_PYTHON": sys.executable,
        # Every socket a Spark process opens (driver, block manager, web UI) on 127.0.0.1.
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **extra,
    }
    for key in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "PYSPARK_DRIVER_PYTHON"):
        env.pop(key, None)
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start(
    argv: Sequence[str], log: Path, env: dict[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    """Start a server in a new session (its own process group), output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def run(
    argv: Sequence[str], env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a command to its end in a process group of its own; on timeout stop the whole group
    (a spark-submit driver and anything it started) and fail."""
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(list(argv), process.returncode, out, err)


def wait_for_port(process: subprocess.Popen[bytes], port: int, log: Path, seconds: float) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port`; fail (with the log's
    tail) when the process exits first or the deadline passes."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"exited {process.returncode} before listening on {port}: {tail(log)}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"nothing listened on {port} within {seconds:.0f}s: {tail(log)}")


def stop(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """Stop the server's whole process group: SIGTERM (a JVM runs its shutdown hooks), then
    SIGKILL for whatever of the group is left after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10.0)


def tail(log: Path, chars: int = 3000) -> str:
    """The end of a log file, for a failure message."""
    return log.read_text(errors="replace")[-chars:] if log.is_file() else "(no log)"
