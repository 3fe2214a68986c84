"""``krakenws verify CAPTURE``: rebuild every book of a capture and check every checksum."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from krakenws.capture import CaptureReport, CaptureVerifier
from krakenws.testing import read_capture

_SHOWN_PROBLEMS = 20


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check every book checksum in a capture (JSON Lines of raw frames)",
        description=(
            "Read a capture (one raw server-to-client frame per line), rebuild every book "
            "(depth from its channelName), verify every checksum. Exit 1 on any mismatch or "
            "unparsable line."
        ),
    )
    parser.add_argument("capture", metavar="CAPTURE", help="a JSON Lines capture file")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    verifier = CaptureVerifier()
    try:
        for line, text in read_capture(args.capture):
            verifier.feed(line, text)
    except OSError as exc:
        print(
            f"krakenws verify: cannot read {args.capture}: {exc.strerror or exc}", file=sys.stderr
        )
        return 2
    except UnicodeDecodeError as exc:
        print(f"krakenws verify: {args.capture} is not UTF-8 text: {exc}", file=sys.stderr)
        return 2
    report = verifier.report()
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        _print_human(args.capture, report)
    return 0 if report.ok else 1


def _print_human(path: str, report: CaptureReport) -> None:
    print(f"{path}: {report.frames} frames, {report.books} books")
    print(
        f"  snapshots {report.snapshots}, updates {report.updates}, "
        f"checksums ok {report.checksums_ok}, mismatches {report.mismatches}"
    )
    if report.unverified:
        print(f"  unverified updates {report.unverified} (book out of sync or no checksum)")
    print(f"  other frames {report.non_book_frames}, unparsable lines {report.unparsable}")
    for problem in report.problems[:_SHOWN_PROBLEMS]:
        print(f"  line {problem.line}: {problem.kind}: {problem.message}")
    if len(report.problems) > _SHOWN_PROBLEMS:
        print(f"  ... and {len(report.problems) - _SHOWN_PROBLEMS} more problems")
    print("OK" if report.ok else "FAILED")
