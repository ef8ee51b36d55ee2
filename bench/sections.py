"""Sections of `bench/results.md` that scripts other than `bench/run.py` write: each lives
between its own pair of marks, so rerunning one script replaces its section alone."""

from __future__ import annotations

from pathlib import Path


def splice_section(results: Path, section: str, start_mark: str, end_mark: str) -> None:
    """Write `section` into `results` between the marks, replacing an earlier one, or at the
    end (so `bench/run.py`'s report and the other scripts' sections live in one file)."""
    text = results.read_text(encoding="utf-8") if results.exists() else ""
    block = f"{start_mark}\n{section}{end_mark}\n"
    if start_mark in text and end_mark in text:
        before, rest = text.split(start_mark, 1)
        after = rest.split(end_mark, 1)[1].lstrip("\n")
        text = before + block + after
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block
    results.write_text(text, encoding="utf-8")
