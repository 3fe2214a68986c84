"""Verifying captures: rebuild every book in a stream of raw frames and check every checksum.

A capture is JSON Lines, one raw server-to-client frame per line (see :mod:`krakenws.testing`).
:class:`CaptureVerifier` is fed ``(line_number, text)`` pairs and keeps one
:class:`~krakenws.protocol.book.OrderBook` per ``(channelName, pair)``: a snapshot (re)builds
it, every update must carry a matching checksum. After a mismatch the book is out of sync, so
its further updates are counted as ``unverified`` until the next snapshot. Non-book frames are
counted and skipped; a line that is not a Kraken v1 frame is reported with its number.

Pure: no files, no clock (``krakenws verify`` does the reading and the printing).

>>> verifier = CaptureVerifier()
>>> verifier.feed(1, '[1,{"as":[["2.00000","1.00000000","1.0"]],"bs":[]},"book-10","XBT/USD"]')
>>> verifier.feed(2, '{"event":"heartbeat"}')
>>> verifier.feed(3, '[1,{"a":[["2.00000","0.00000000","2.0"]],"c":"0"},"book-10","XBT/USD"]')
>>> report = verifier.report()
>>> report.ok, report.updates, report.checksums_ok, report.non_book_frames
(True, 1, 1, 1)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from krakenws.errors import BookError, ChecksumMismatchError, ProtocolError
from krakenws.protocol.book import OrderBook, depth_from_channel_name
from krakenws.protocol.codec import decode_server
from krakenws.protocol.messages import BookSnapshot, BookUpdate

__all__ = ["CaptureProblem", "CaptureReport", "CaptureVerifier", "verify_capture_lines"]


@dataclass(frozen=True)
class CaptureProblem:
    """One thing wrong in a capture, at a line."""

    line: int
    kind: str  # "unparsable", "mismatch", "protocol", "crossed"
    message: str
    pair: str | None = None
    expected: int | None = None
    computed: int | None = None


@dataclass
class CaptureReport:
    """What :class:`CaptureVerifier` found. ``ok`` is False on any problem."""

    frames: int = 0
    books: int = 0
    snapshots: int = 0
    updates: int = 0
    checksums_ok: int = 0
    mismatches: int = 0
    unverified: int = 0
    non_book_frames: int = 0
    unparsable: int = 0
    problems: list[CaptureProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No mismatch, no unparsable line, no broken book."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The summary as one JSON-ready object."""
        data = asdict(self)
        data["ok"] = self.ok
        data["problems"] = [
            {key: value for key, value in asdict(problem).items() if value is not None}
            for problem in self.problems
        ]
        return data


class CaptureVerifier:
    """Feed it frames in order; ask it for a :class:`CaptureReport` at any time."""

    def __init__(self, max_problems: int = 1000) -> None:
        self._books: dict[tuple[str, str], OrderBook] = {}
        self._broken: set[tuple[str, str]] = set()
        self._report = CaptureReport()
        self._max_problems = max_problems

    def feed(self, line: int, text: str) -> None:
        """Check one frame."""
        report = self._report
        report.frames += 1
        try:
            message = decode_server(text)
        except ProtocolError as exc:
            report.unparsable += 1
            self._problem(CaptureProblem(line, "unparsable", str(exc)))
            return
        if isinstance(message, BookSnapshot):
            report.snapshots += 1
            key = (message.channel_name, message.pair)
            book = self._books.get(key)
            if book is None:
                depth = depth_from_channel_name(message.channel_name)
                book = self._books[key] = OrderBook(message.pair, depth)
            self._broken.discard(key)
            self._apply(line, key, book, message)
        elif isinstance(message, BookUpdate):
            report.updates += 1
            key = (message.channel_name, message.pair)
            book = self._books.get(key)
            if book is None or key in self._broken:
                report.unverified += 1
                if book is None:
                    self._broken.add(key)
                    self._problem(
                        CaptureProblem(line, "protocol", "update before any snapshot", message.pair)
                    )
                return
            if self._apply(line, key, book, message) and message.checksum is not None:
                report.checksums_ok += 1
            elif message.checksum is None and key not in self._broken:
                report.unverified += 1
        else:
            report.non_book_frames += 1

    def _apply(
        self, line: int, key: tuple[str, str], book: OrderBook, message: BookSnapshot | BookUpdate
    ) -> bool:
        try:
            book.apply(message)
        except ChecksumMismatchError as exc:
            self._report.mismatches += 1
            self._broken.add(key)
            self._problem(
                CaptureProblem(line, "mismatch", str(exc), exc.pair, exc.expected, exc.computed)
            )
            return False
        except BookError as exc:
            self._broken.add(key)
            self._problem(CaptureProblem(line, "crossed", str(exc), exc.pair))
            return False
        except ProtocolError as exc:
            self._broken.add(key)
            self._problem(CaptureProblem(line, "protocol", str(exc), key[1]))
            return False
        return True

    def _problem(self, problem: CaptureProblem) -> None:
        if len(self._report.problems) < self._max_problems:
            self._report.problems.append(problem)

    def report(self) -> CaptureReport:
        """The summary so far."""
        self._report.books = len(self._books)
        return self._report


def verify_capture_lines(lines: Iterable[tuple[int, str]]) -> CaptureReport:
    """Verify a whole capture given as ``(line_number, text)`` pairs."""
    verifier = CaptureVerifier()
    for line, text in lines:
        verifier.feed(line, text)
    return verifier.report()
