"""The `orders-etl` command line: arguments, common flags, exit codes; dispatches to commands.

Arguments are parsed and checked before Spark starts, so a bad one fails fast, alone, with
exit 2 and one line on stderr, and writes nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

from orders_etl.arguments import AnySpec, Parser, parse_timestamp
from orders_etl.commands import COMMANDS
from orders_etl.config import Config, load_config
from orders_etl.context import RunContext
from orders_etl.errors import OrdersEtlError, UsageError

SPECS: Mapping[str, AnySpec] = MappingProxyType({spec.name: spec for spec in COMMANDS})


def _common() -> Parser:
    common = Parser(add_help=False)
    common.add_argument(
        "--env", help="config name: conf/<NAME>.toml (default: local, or $ORDERS_ETL_ENV)"
    )
    common.add_argument("--warehouse", help="warehouse root; overrides the config")
    common.add_argument(
        "--processing-time",
        metavar="TS",
        help="the run's 'now', ISO-8601 with a zone (default: current UTC time)",
    )
    common.add_argument(
        "--verbose",
        action="store_true",
        help="Spark's own output on the console and full stack traces",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of every command and flag of the contract."""
    parser = Parser(prog="orders-etl", description="Late-arrival-correct orders fact table.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    common = [_common()]
    for spec in COMMANDS:
        spec.add_arguments(sub.add_parser(spec.name, parents=common, help=spec.help))
    return parser


def check_warehouse(root: str) -> str:
    """Refuse an empty warehouse root or the file system root."""
    if not root or not root.strip() or "\x00" in root:
        raise UsageError("the warehouse root is empty; set --warehouse or [warehouse] root")
    # Spelled as Hadoop reads it ("file:" + "/<table>" is "/<table>"), symlinks resolved.
    local = "/" + root[len("file:") :].lstrip("/") if root.startswith("file:") else root
    if "://" not in local and os.path.realpath(local) in (os.sep, "//"):
        raise UsageError(f"refusing warehouse root {root!r}: it is the file system root")
    if "`" in root:
        # Delta's table builder quotes the location as delta.`<path>` and parses it as SQL.
        raise UsageError(f"refusing warehouse root {root!r}: it contains a backtick (`)")
    if re.fullmatch(r"[a-z0-9]+://[^/]*/?", root):
        raise UsageError(f"refusing warehouse root {root!r}: it is the root of a bucket")
    return root


@dataclass(frozen=True)
class Invocation:
    """A parsed, checked command line: ready to run once Spark starts."""

    spec: AnySpec
    config: Config
    processing_time: datetime
    verbose: bool
    arguments: Mapping[str, Any]
    params: Any

    @property
    def command(self) -> str:
        """The command's name."""
        return self.spec.name


def prepare(argv: Sequence[str]) -> Invocation:
    """Parse and check a command line without starting Spark."""
    args = build_parser().parse_args(list(argv))
    config = load_config(args.env, args.warehouse)
    check_warehouse(config.warehouse)
    now = (
        parse_timestamp(args.processing_time, "--processing-time")
        if args.processing_time
        else datetime.now(UTC)
    )
    arguments = {k: v for k, v in vars(args).items() if k != "command" and v not in (None, False)}
    spec = SPECS[args.command]
    return Invocation(spec, config, now, args.verbose, arguments, spec.params(args, config, now))


def drop_py4j_root_records(record: logging.LogRecord) -> bool:
    """Drop what py4j logs on the root logger: when the JVM dies during a call it cannot retry,
    py4j logs the call's traceback with `logging.exception` (not its own logger). The command
    already reports that failure in one line (`runner.jvm_failure`)."""
    return not (record.name == "root" and Path(record.pathname).parent.name == "py4j")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `orders-etl` and of every `jobs/<command>.py`; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="orders-etl: %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    if not verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(drop_py4j_root_records)
    try:
        invocation = prepare(argv)
    except OrdersEtlError as exc:
        command = next((a for a in argv if a in SPECS), "")
        print(
            f"orders-etl{' ' + command if command else ''}: error: {exc}",
            file=sys.stderr,
            flush=True,
        )
        return exc.exit_code
    from orders_etl.runner import execute, new_run_id

    ctx = RunContext(
        invocation.config,
        invocation.processing_time,
        new_run_id(),
        verbose=invocation.verbose,
        opens_catalog=invocation.spec.opens_catalog,
    )
    spec, params = invocation.spec, invocation.params
    try:
        return execute(ctx, spec.name, invocation.arguments, lambda: spec.run(ctx, params))
    except KeyboardInterrupt:
        print(f"orders-etl {spec.name}: error: interrupted", file=sys.stderr)
        return 130


def run_job(command: str) -> NoReturn:
    """Run one command as a spark-submit entry point: `jobs/<command>.py [flags]`."""
    sys.exit(main([command, *sys.argv[1:]]))
