"""Blank-line separated records, the shape of dpkg's status and apk's installed database."""

from __future__ import annotations


def blank_line_records(text: str) -> list[tuple[int, list[str]]]:
    """The records of ``text``, each with the (1-based) line number it starts at."""
    records: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            if not current:
                start = number
            current.append(line)
        elif current:
            records.append((start, current))
            current = []
    if current:
        records.append((start, current))
    return records
