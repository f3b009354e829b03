"""`postdesk inspect`, run the way a person runs it: as a separate process.

Each test starts `python -m postdesk ...` (the same entry point as the console
script) with POSTDESK_DATA_DIR pointing at a temporary directory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from tests.mail._build import ATTACHMENT_KEYS
from tests.mail._build import TO_DICT_KEYS as DOCUMENTED_KEYS


PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4
NOTES = b"first line\nsecond line\n"


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _attachment(filename: str, content_type: str, data: bytes) -> bytes:
    return (
        f'--BOUNDARY\r\nContent-Type: {content_type}; name="{filename}"\r\n'
        f'Content-Disposition: attachment; filename="{filename}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + _b64(data)


def build_message(*attachments: tuple[str, str, bytes], subject: str = "Quarterly report") -> bytes:
    head = (
        "From: Alice Example <alice@example.com>\r\n"
        "To: Help Desk <desk@example.org>\r\n"
        f"Subject: {subject}\r\n"
        "Date: Tue, 05 Mar 2024 10:15:00 +0100\r\n"
        "Message-ID: <report-1@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="BOUNDARY"\r\n\r\n'
        "--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Please find the report attached.\r\n"
    ).encode()
    return head + b"".join(_attachment(*a) for a in attachments) + b"--BOUNDARY--\r\n"


REPORT = build_message(("report.pdf", "application/pdf", PDF), ("notes.txt", "text/plain", NOTES))


@pytest.fixture
def run(tmp_path):
    """Run `postdesk ARGS...` in a fresh process; returns the CompletedProcess (bytes)."""
    data_dir = tmp_path / "data"
    work_dir = tmp_path / "cwd"
    work_dir.mkdir()
    env = {**os.environ, "POSTDESK_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "postdesk.settings"}
    env.pop("POSTDESK_DATABASE_URL", None)

    def _run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "postdesk", *args],
            input=stdin if stdin is not None else b"",
            capture_output=True,
            cwd=work_dir,
            env=env,
            timeout=120,
        )

    return _run


@pytest.fixture
def report_file(tmp_path) -> Path:
    path = tmp_path / "report.eml"
    path.write_bytes(REPORT)
    return path


def _out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.decode("utf-8", "replace")


def _err(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.decode("utf-8", "replace")


def _ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, _err(proc)
    assert "Traceback" not in _err(proc), _err(proc)
    return _out(proc)


# --------------------------------------------------------------------------- help


def test_postdesk_help_lists_inspect(run):
    out = _ok(run("--help"))
    assert any(line.split()[:1] == ["inspect"] for line in out.splitlines()), out


def test_inspect_help_mentions_its_options(run):
    out = _ok(run("inspect", "--help"))
    assert "--json" in out and "--extract" in out


# --------------------------------------------------------------------------- human output


def test_inspect_prints_subject_sender_body_and_attachment_table(run, report_file):
    out = _ok(run("inspect", str(report_file)))
    assert "Quarterly report" in out
    assert "alice@example.com" in out and "Alice Example" in out
    assert "Please find the report attached." in out
    for filename, content_type in (("report.pdf", "application/pdf"), ("notes.txt", "text/plain")):
        row = [line for line in out.splitlines() if filename in line]
        assert row, f"{filename} missing from:\n{out}"
        assert content_type in row[0], f"the row for {filename} has no content type: {row[0]!r}"


def test_inspect_human_output_is_not_json(run, report_file):
    out = _ok(run("inspect", str(report_file)))
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


# --------------------------------------------------------------------------- --json


def test_inspect_json_has_exactly_the_documented_keys(run, report_file):
    data = json.loads(_ok(run("inspect", str(report_file), "--json")))
    assert set(data) == DOCUMENTED_KEYS
    assert data["subject"] == "Quarterly report"
    assert data["from"] == {"name": "Alice Example", "address": "alice@example.com"}
    assert data["to"] == [{"name": "Help Desk", "address": "desk@example.org"}]
    assert data["message_id"] == "report-1@example.com"
    assert data["date"].startswith("2024-03-05T10:15:00")
    assert data["date"].endswith("+01:00")
    assert "Please find the report attached." in data["text"]


def test_inspect_json_attachments_have_exactly_the_documented_keys(run, report_file):
    data = json.loads(_ok(run("inspect", str(report_file), "--json")))
    assert [a["filename"] for a in data["attachments"]] == ["report.pdf", "notes.txt"]
    for att in data["attachments"]:
        assert set(att) == ATTACHMENT_KEYS
    pdf = data["attachments"][0]
    assert pdf["content_type"] == "application/pdf"
    assert pdf["size"] == len(PDF)
    assert pdf["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert pdf["inline"] is False


def test_inspect_json_is_utf8(run, tmp_path):
    path = tmp_path / "utf8.eml"
    path.write_bytes(
        "From: Zoë <zoe@example.com>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nCafé ☕\r\n".encode()
    )
    proc = run("inspect", str(path), "--json")
    data = json.loads(proc.stdout.decode("utf-8"))
    assert data["subject"] == "Grüße"
    assert "Café ☕" in data["text"]


# --------------------------------------------------------------------------- stdin


def test_inspect_dash_reads_stdin(run):
    out = _ok(run("inspect", "-", stdin=REPORT))
    assert "Quarterly report" in out and "report.pdf" in out


def test_inspect_dash_json_reads_stdin(run):
    data = json.loads(_ok(run("inspect", "-", "--json", stdin=REPORT)))
    assert data["subject"] == "Quarterly report"
    assert len(data["attachments"]) == 2


# --------------------------------------------------------------------------- --extract


def test_extract_writes_each_attachment_with_its_bytes(run, report_file, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _ok(run("inspect", str(report_file), "--extract", str(out_dir)))
    assert sorted(p.name for p in out_dir.iterdir()) == ["notes.txt", "report.pdf"]
    assert (out_dir / "report.pdf").read_bytes() == PDF
    assert (out_dir / "notes.txt").read_bytes() == NOTES


def test_extract_two_attachments_of_the_same_name_both_written(run, tmp_path):
    msg = tmp_path / "twice.eml"
    msg.write_bytes(build_message(("a.txt", "text/plain", b"one\n"), ("a.txt", "text/plain", b"two\n")))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _ok(run("inspect", str(msg), "--extract", str(out_dir)))
    assert sorted(p.name for p in out_dir.iterdir()) == ["a (2).txt", "a.txt"]
    assert (out_dir / "a.txt").read_bytes() == b"one\n"
    assert (out_dir / "a (2).txt").read_bytes() == b"two\n"


def test_extract_never_overwrites_an_existing_file(run, report_file, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "report.pdf").write_bytes(b"keep me")
    _ok(run("inspect", str(report_file), "--extract", str(out_dir)))
    assert (out_dir / "report.pdf").read_bytes() == b"keep me"
    written = [p for p in out_dir.iterdir() if p.name != "report.pdf" and p.suffix == ".pdf"]
    assert [p.read_bytes() for p in written] == [PDF], sorted(p.name for p in out_dir.iterdir())


def test_extract_twice_into_the_same_directory_keeps_both_copies(run, report_file, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _ok(run("inspect", str(report_file), "--extract", str(out_dir)))
    _ok(run("inspect", str(report_file), "--extract", str(out_dir)))
    assert len(list(out_dir.iterdir())) == 4
    assert sorted(p.read_bytes() for p in out_dir.iterdir()) == sorted([PDF, PDF, NOTES, NOTES])


def test_extract_uses_safe_names_and_stays_inside_the_directory(run, tmp_path):
    msg = tmp_path / "evil.eml"
    msg.write_bytes(
        build_message(
            ("../../escape.txt", "text/plain", b"evil\n"),
            ("..\\..\\win.txt", "text/plain", b"win\n"),
            (".bashrc", "text/plain", b"rc\n"),
        )
    )
    out_dir = tmp_path / "deep" / "out"
    out_dir.mkdir(parents=True)
    _ok(run("inspect", str(msg), "--extract", str(out_dir)))
    names = sorted(p.name for p in out_dir.iterdir())
    assert "escape.txt" in names and "win.txt" in names, names
    assert not any(n.startswith(".") for n in names), names
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "deep" / "escape.txt").exists()
    assert sorted(p.read_bytes() for p in out_dir.iterdir()) == sorted([b"evil\n", b"win\n", b"rc\n"])
    assert all(p.is_file() and p.parent == out_dir for p in out_dir.iterdir())


def test_extract_thousands_of_attachments_of_one_name_writes_them_all(run, tmp_path):
    # Issue 10: the search for a free name started at " (2)" for every
    # attachment (quadratic: 190 s for 5,000); each name now remembers its next
    # number.  2,900: under the parser's 3,000-part bound (mail/_params.MAX_PARTS),
    # beyond which a message is kept whole as original.eml.
    count = 2900
    msg = tmp_path / "many.eml"
    msg.write_bytes(build_message(*[("same.txt", "text/plain", b"copy %d\n" % i) for i in range(count)]))
    out_dir = tmp_path / "out"
    _ok(run("inspect", str(msg), "--extract", str(out_dir)))
    names = {p.name for p in out_dir.iterdir()}
    assert len(names) == count
    assert {"same.txt", "same (2).txt", f"same ({count}).txt"} <= names
    assert (out_dir / "same.txt").read_bytes() == b"copy 0\n"
    assert (out_dir / f"same ({count}).txt").read_bytes() == f"copy {count - 1}\n".encode()


def test_extract_passes_over_a_dangling_symlink_and_writes_the_rest(run, report_file, tmp_path):
    # Issue 10: a dangling symlink under an attachment's name aborted the rest.
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    elsewhere = tmp_path / "elsewhere.pdf"
    (out_dir / "report.pdf").symlink_to(elsewhere)
    proc = run("inspect", str(report_file), "--extract", str(out_dir))
    _ok(proc)
    assert not elsewhere.exists(), "the link was followed"
    assert (out_dir / "report.pdf").is_symlink()
    assert (out_dir / "report (2).pdf").read_bytes() == PDF
    assert (out_dir / "notes.txt").read_bytes() == NOTES
    assert "symbolic link" in _err(proc)


def test_extract_never_writes_through_a_symlink_to_an_existing_file(run, report_file, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (out_dir / "notes.txt").symlink_to(victim)
    _ok(run("inspect", str(report_file), "--extract", str(out_dir)))
    assert victim.read_bytes() == b"precious"
    assert (out_dir / "notes (2).txt").read_bytes() == NOTES
    assert (out_dir / "report.pdf").read_bytes() == PDF


# --------------------------------------------------------------------------- errors


def _assert_one_line_error(proc: subprocess.CompletedProcess) -> None:
    err = _err(proc)
    assert proc.returncode == 2, (proc.returncode, err)
    assert "Traceback" not in err and "Traceback" not in _out(proc), err
    assert len(err.strip().splitlines()) == 1, err


def test_missing_file_is_one_line_error_with_status_2(run, tmp_path):
    proc = run("inspect", str(tmp_path / "no-such.eml"))
    _assert_one_line_error(proc)
    assert "no-such.eml" in _err(proc)


def test_directory_is_one_line_error_with_status_2(run, tmp_path):
    proc = run("inspect", str(tmp_path))
    _assert_one_line_error(proc)


def test_missing_file_with_json_is_one_line_error_with_status_2(run, tmp_path):
    proc = run("inspect", str(tmp_path / "no-such.eml"), "--json")
    _assert_one_line_error(proc)
    assert proc.stdout == b""


def test_garbage_file_still_inspects(run, tmp_path):
    path = tmp_path / "garbage.eml"
    path.write_bytes(bytes(range(256)) * 10)
    _ok(run("inspect", str(path), "--json"))


# --------------------------------------------------------------------------- bundled sample


def _bundled_samples() -> list[Path]:
    samples = resources.files("postdesk") / "samples"
    return sorted(Path(str(p)) for p in samples.iterdir() if p.name.endswith(".eml")) if samples.is_dir() else []


def test_a_sample_message_is_bundled():
    assert _bundled_samples(), "no src/postdesk/samples/*.eml"


def test_bundled_sample_messages_inspect(run):
    samples = _bundled_samples()
    if not samples:
        pytest.skip("no bundled sample yet (see test_a_sample_message_is_bundled)")
    for sample in samples:
        out = _ok(run("inspect", str(sample)))
        assert out.strip(), sample
        data = json.loads(_ok(run("inspect", str(sample), "--json")))
        assert set(data) == DOCUMENTED_KEYS
        assert data["subject"] or data["text"], sample
