"""The parts of `benchmarks/serving_soak.py` that do not talk to the server.

The soak's version directories (listing them, publishing a copy of the
source version as the next one, pruning old ones) and its report (the
machine-readable RESULT line and the section appended to
benchmarks/RESULTS.md). Kept apart so that they can be tested without a
server or any timing.

Attributes:
    ROOT: The repository's root directory.
    RESULTS: benchmarks/RESULTS.md, where `record` appends the soak's figures.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")


def versions_on_disk(base: str) -> list[int]:
    """The integer version directories under `base`, ascending."""
    return sorted(int(v) for v in os.listdir(base) if v.isdigit())


def prune_versions(base: str, served: int, keep: int) -> list[int]:
    """Deletes version dirs beyond the newest `keep`, never `served` or newer; returns them."""
    versions = versions_on_disk(base)
    doomed = [v for v in versions[:-keep] if v < served]
    for version in doomed:
        shutil.rmtree(os.path.join(base, str(version)), ignore_errors=True)
    return doomed


def publish_version(source: str, base: str, version: int) -> None:
    """Copies `source` aside, then renames it to `base/<version>` (one atomic step)."""
    staging = os.path.join(base, f".staging-{version}")
    shutil.copytree(source, staging)
    os.rename(staging, os.path.join(base, str(version)))


def result_line(requests: int, failed: int, swaps: int, rss_start_mb, rss_end_mb) -> str:
    """The machine-readable last line."""
    return (
        f"RESULT requests={requests} failed={failed} swaps={swaps} "
        f"rss_start_mb={rss_start_mb:.1f} rss_end_mb={rss_end_mb:.1f}"
    )


def record(args: argparse.Namespace, figures: dict) -> None:
    """Appends the soak's figures, with the command and the date, to RESULTS.md.

    Args:
        args: The soak's flags (`serving_soak.parse_args`).
        figures: requests, failed, exported, swaps, closed, p50_ms, p99_ms,
            rss_start_mb, rss_end_mb and rss_max_mb.
    """
    date = datetime.date.today().isoformat()
    command = "python benchmarks/serving_soak.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    f = figures
    rates = f"{args.qps:g} gRPC" + (f" + {args.rest_qps:g} REST" if args.rest_qps else "")
    lines = [
        "",
        f"### serving_soak — {date}{f' ({args.label})' if args.label else ''}",
        "",
        f"`{command}` on {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"1 user x {args.items} items per request at {rates} requests/s, "
        f"{args.warmup_s:g} s of warm-up then {args.duration_s:g} s with a new version every "
        f"{args.swap_every_s:g} s (server polling every {args.poll_s:g} s, "
        f"{args.keep_versions} version dirs kept on disk); clients on the same machine.",
        "",
        "| requests | failed | versions exported | swaps seen | versions closed "
        "| p50 ms | p99 ms | RSS start MB | RSS end MB | RSS max MB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {f['requests']:,} | {f['failed']} | {f['exported']} | {f['swaps']} | {f['closed']} "
        f"| {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {f['rss_start_mb']:.0f} "
        f"| {f['rss_end_mb']:.0f} | {f['rss_max_mb']:.0f} |",
    ]
    with open(RESULTS, "a") as out:
        out.write("\n".join(lines) + "\n")
