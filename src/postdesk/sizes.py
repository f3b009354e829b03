"""Sizes in words, one formatter for every place that shows one: the quarantine's
reasons and pages, the CLI, the attachment lists, the sources' error messages.

    describe_size(900)        "900 bytes"
    describe_size(1536)       "1.5 KB"
    describe_size(5 * MB)     "5.0 MB"
    describe_over(1100, 1050) "1,100 bytes > 1,050 bytes"  (rounded, both read "1.1 KB")

Never "0.0 MB": below a megabyte a size is in KB, below a kilobyte in bytes.
Pure: no Django, no database (postdesk.sources uses it).
"""

from __future__ import annotations

KB = 1024
MB = 1024 * KB
GB = 1024 * MB


def describe_size(size: int) -> str:
    if size >= GB:
        return f"{size / GB:.1f} GB"
    if size >= MB:
        return f"{size / MB:.1f} MB"
    if size >= KB:
        return f"{size / KB:.1f} KB"
    return f"{size} bytes"


def describe_over(size: int, limit: int) -> str:
    """"12.3 MB > 10.0 MB"; in exact bytes when the two would read the same once rounded
    (a limit of 0.001 MB and a message just over it must not read "1.0 KB > 1.0 KB")."""
    shown, allowed = describe_size(size), describe_size(limit)
    if shown == allowed:
        return f"{size:,} bytes > {limit:,} bytes"
    return f"{shown} > {allowed}"
