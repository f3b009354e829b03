"""The `postdesk` console command: Django's management commands, with our own first.

`postdesk --help` lists Postdesk's commands with a line each, then the Django
commands that still work (`postdesk migrate`, `postdesk createsuperuser`, ...).
"""

from __future__ import annotations

import os
import sys

_USAGE = """usage: postdesk COMMAND [options]

Postdesk commands:
{ours}

Django commands (postdesk COMMAND --help for each):
{theirs}

Settings come from the environment: POSTDESK_DATA_DIR (default ./postdesk-data),
POSTDESK_DATABASE_URL (default SQLite in the data dir), POSTDESK_SECRET_KEY.

"""

# Commands that read or print only: they must work without creating the data dir.
_STATELESS = {"inspect", "help", "--help", "-h", "--version", "version"}


def _command_summaries() -> tuple[list[str], list[str]]:
    """(our commands with their help line, Django's command names)."""
    from django.core.management import get_commands, load_command_class

    ours, theirs = [], []
    for name, app in sorted(get_commands().items()):
        if app == "postdesk":
            try:
                summary = load_command_class(app, name).help.strip().splitlines()[0]
            except Exception:  # a broken command must not break --help
                summary = ""
            ours.append(f"  {name:<12} {summary}")
        else:
            theirs.append(name)
    return ours, theirs


def _print_help() -> None:
    ours, theirs = _command_summaries()
    lines, line = [], " "
    for name in theirs:
        if len(line) + len(name) > 76:
            lines.append(line)
            line = " "
        line += " " + name
    lines.append(line)
    sys.stdout.write(_USAGE.format(ours="\n".join(ours), theirs="\n".join(lines)))


def _ensure_data_dir() -> None:
    from pathlib import Path

    data_dir = Path(os.environ.get("POSTDESK_DATA_DIR", "postdesk-data"))
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # it will hold the secret key and mail


_HELP = {"-h", "--help", "--help-all"}
# Set for a run that only prints (help, version, inspect): settings.py then keeps no secret
# key in the data dir, so `postdesk --help` leaves an empty data dir empty.
PRINT_ONLY = "_POSTDESK_PRINT_ONLY"


def _only_prints(argv: list[str]) -> bool:
    return len(argv) < 2 or argv[1] in _STATELESS or any(arg in _HELP for arg in argv[1:])


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postdesk.settings")
    if _only_prints(argv):
        os.environ[PRINT_ONLY] = "1"
    else:
        _ensure_data_dir()
    import django

    django.setup()
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help") and len(argv) == 2:
        _print_help()
        return
    if argv[1] in ("--version", "version"):
        from postdesk import __version__

        print(f"postdesk {__version__}")
        return
    from django.core.management import execute_from_command_line

    argv[0] = "postdesk"
    execute_from_command_line(argv)
