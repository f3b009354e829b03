#!/usr/bin/env python
"""Throughput and memory benchmark for `postdesk.mail.parse()`.

    python bench/parse.py                  # 1000 messages, 3 interleaved rounds, 50 MB RSS check
    python bench/parse.py --count 300 --seconds 20
    python bench/parse.py --profile        # also cProfile parse() over the corpus (top 25 by cumtime)
    python bench/parse.py --rss-child 50   # (internal) peak RSS of parse() on one 50 MB message

The corpus is generated deterministically (seeded; message i depends only on the seed and i, so a
smaller --count is a prefix of a larger one): plain text, text+HTML alternatives, HTML-only, inline images
(multipart/related + cid:), attachments (PDF-like and random binary, base64), forwarded messages
(message/rfc822), legacy charsets (koi8-r, windows-1252, iso-2022-jp, shift_jis, gb2312) with
quoted-printable / base64 / 8bit bodies (a few with no declared charset), RFC 2047 and raw 8-bit
headers.  Median size is about 20 KB; one message in a hundred is a 2-6 MB one.

The baseline is the bare standard library: `email.message_from_bytes(raw, policy=policy.default)`,
walking every part, `get_payload(decode=True)` for leaf parts and `.get_content()` for text parts.
Targets: parse() at least 0.5x the baseline's messages per second; peak RSS while parsing one 50 MB
message below 5x the message size over the process's baseline.

Standard library only (plus postdesk itself).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import email
import gc
import io
import math
import os
import pstats
import quopri
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from email import policy
from email.header import Header
from email.utils import format_datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
try:  # a checkout that is not pip-installed
    import postdesk  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO_ROOT / "src"))

SEED = 20240611
MEDIAN_TARGET = 20_000  # bytes
THROUGHPUT_TARGET = 0.5  # parse() msg/s >= 0.5 x baseline msg/s
RSS_TARGET = 5.0  # peak RSS increment < 5 x message size

# --------------------------------------------------------------------------------------------
# Corpus generation
# --------------------------------------------------------------------------------------------

WORDS = {
    "en": (
        "the a to of and in for on with is it that this your our we you please thanks regards "
        "order invoice ticket support account password delivery refund payment shipping customer "
        "issue problem update request reply attached see below meeting tomorrow today monday "
        "friday report quarterly contract renewal subscription cancel confirm received sorry "
        "urgent question price quote discount number reference tracking warehouse address"
    ).split(),
    "ru": (
        "здравствуйте спасибо заказ счёт доставка оплата возврат клиент поддержка вопрос ответ "
        "пожалуйста срочно договор письмо сегодня завтра понедельник пятница номер адрес склад "
        "проблема решение отчёт цена скидка подтвердите получили извините с уважением и в на не "
        "что это мы вы ваш наш для по от до"
    ).split(),
    "cp1252": (
        "café naïve façade über Straße résumé señor crème brûlée déjà vu Ångström coöperate "
        "€100 £20 ¥500 “quoted” ‘single’ – — … • ™ © ® ½ ¾ Zürich München Québec Ærø "
        "bonjour merci commande facture livraison remboursement Grüße vielen Dank Bestellung "
        "Rechnung Lieferung the and order invoice please thanks"
    ).split(),
    "ja": (
        "こんにちは ありがとう ございます 注文 請求書 配送 お問い合わせ 確認 よろしく お願いします "
        "返金 サポート 担当者 株式会社 会議 明日 今日 月曜日 金曜日 番号 住所 倉庫 問題 解決 報告 "
        "価格 割引 受領 申し訳 ありません 添付 ファイル 下記 ご参照 ください 東京 大阪 です ます"
    ).split(),
    "zh": (
        "你好 谢谢 订单 发票 配送 退款 客户 服务 请 确认 问题 帐户 密码 支付 运输 明天 今天 星期一 "
        "星期五 报告 合同 续订 取消 收到 抱歉 紧急 价格 报价 折扣 号码 参考 跟踪 仓库 地址 北京 上海 "
        "的 了 和 是 在 我们 您"
    ).split(),
    "utf8": (
        "hello thanks order invoice café Straße здравствуйте заказ 注文 ありがとう 订单 谢谢 "
        "naïve résumé ✓ → € 😀 🎉 👍 ñandú Łódź İstanbul ελληνικά עברית العربية हिन्दी"
    ).split(),
}

LEGACY = {  # charset -> vocabulary
    "koi8-r": "ru",
    "windows-1252": "cp1252",
    "iso-2022-jp": "ja",
    "shift_jis": "ja",
    "gb2312": "zh",
}

FIRST = "Anna Boris Chloé Dmitri Emma Farid Greta Hiro Ines José Kenji Lena Marta Nils Olga Pavel Yuki Zoë".split()
LAST = "Smith Müller Иванов Tanaka 王 García Dubois Kowalski Nakamura Petrov Rossi Jensen O'Brien".split()
DOMAINS = "example.com example.org mail.example.net shop.example.de kunde.example.at example.co.jp".split()

KINDS = ("plain", "alternative", "html-only", "related", "attachments", "forwarded")
KIND_WEIGHTS = (25, 22, 6, 13, 24, 10)


def _vocab(key: str, charset: str) -> list[str]:
    """The words of a vocabulary that the charset can encode."""
    out = []
    for w in WORDS[key]:
        try:
            w.encode(charset)
        except UnicodeEncodeError:
            continue
        out.append(w)
    return out


_VOCAB_CACHE: dict[tuple[str, str], list[str]] = {}


def vocab(key: str, charset: str) -> list[str]:
    k = (key, charset)
    if k not in _VOCAB_CACHE:
        _VOCAB_CACHE[k] = _vocab(key, charset)
    return _VOCAB_CACHE[k]


def sentence(rng: random.Random, words: list[str], n: int) -> str:
    return " ".join(rng.choice(words) for _ in range(n))


def paragraphs(rng: random.Random, words: list[str], size: int, width: int = 72) -> str:
    """Roughly `size` characters of wrapped text, lines joined by \n, paragraphs by a blank line."""
    lines: list[str] = []
    total = 0
    line: list[str] = []
    cur = 0
    batch: list[str] = []
    while total < size:
        if not batch:
            batch = rng.choices(words, k=256)
        w = batch.pop()
        if cur + len(w) + 1 > width:
            lines.append(" ".join(line))
            total += cur + 1
            line, cur = [], 0
            if rng.random() < 0.12:
                lines.append("")
        line.append(w)
        cur += len(w) + 1
    if line:
        lines.append(" ".join(line))
    return "\n".join(lines) + "\n"


def crlf(b: bytes) -> bytes:
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def b64_lines(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def encode_text_body(text: str, charset: str, cte: str) -> bytes:
    data = text.encode(charset)
    if cte == "base64":
        return b64_lines(data)
    if cte == "quoted-printable":
        return crlf(quopri.encodestring(data))
    return crlf(data)  # 7bit / 8bit


def pick_cte(rng: random.Random, charset: str) -> str:
    if charset == "us-ascii":
        return "7bit"
    if charset == "iso-2022-jp":
        return rng.choice(["7bit", "7bit", "base64"])
    return rng.choice(["quoted-printable", "base64", "8bit"])


def encoded_word(rng: random.Random, s: str, charset: str) -> str:
    """An RFC 2047 encoded header value (B or Q), or the plain string when it is ASCII."""
    try:
        s.encode("ascii")
        return s
    except UnicodeEncodeError:
        pass
    if charset == "us-ascii":
        charset = "utf-8"
    h = Header(s, charset=charset, maxlinelen=76)
    return h.encode(linesep="\r\n")


def person(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = re.sub(r"[^a-z]", "", (first[0] + last).lower()) or "user"
    return f"{first} {last}", f"{local}{rng.randrange(100)}@{rng.choice(DOMAINS)}"


def addr_header(rng: random.Random, name: str, addr: str, charset: str, raw8: bool) -> bytes:
    """An address as header bytes: RFC 2047 name, or (raw8) the name raw in the legacy charset."""
    try:
        name.encode("ascii")
        return f'"{name}" <{addr}>'.encode()
    except UnicodeEncodeError:
        pass
    cs = charset if charset != "us-ascii" else "utf-8"
    if raw8 and cs not in ("iso-2022-jp",):
        try:
            return b'"' + name.encode(cs) + b'" <' + addr.encode() + b">"
        except UnicodeEncodeError:
            pass
    try:
        name.encode(cs)
    except UnicodeEncodeError:
        cs = "utf-8"
    return f"{encoded_word(rng, name, cs)} <{addr}>".encode()


def msgid(rng: random.Random) -> str:
    return f"<{rng.getrandbits(64):016x}.{rng.getrandbits(32):08x}@{rng.choice(DOMAINS)}>"


def boundary(rng: random.Random) -> str:
    return f"----=_Part_{rng.getrandbits(48):012x}_{rng.randrange(10**6)}"


def headers(rng: random.Random, charset: str, words: list[str], raw8: bool, depth: int) -> list[bytes]:
    base = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=rng.randrange(365 * 86400))
    tz = timezone(timedelta(hours=rng.choice([-8, -5, 0, 1, 2, 3, 9])))
    from_name, from_addr = person(rng)
    subject = sentence(rng, words, rng.randint(3, 9))
    cs = charset if charset != "us-ascii" else "utf-8"
    hs = [
        f"Received: from mx{rng.randrange(9)}.example.net ([192.0.2.{rng.randrange(255)}]) by "
        f"mx.example.com with ESMTPS id {rng.getrandbits(40):x}; {format_datetime(base)}".encode(),
        b"From: " + addr_header(rng, from_name, from_addr, cs, raw8),
        b"To: "
        + b", ".join(addr_header(rng, *person(rng), cs, raw8) for _ in range(rng.randint(1, 3))),
    ]
    if rng.random() < 0.3:
        hs.append(b"Cc: " + b", ".join(addr_header(rng, *person(rng), cs, raw8) for _ in range(rng.randint(1, 4))))
    if raw8 and cs != "iso-2022-jp":
        hs.append(b"Subject: " + subject.encode(cs, "replace"))
    else:
        hs.append(b"Subject: " + encoded_word(rng, subject, cs).encode())
    hs.append(f"Date: {format_datetime(base.astimezone(tz))}".encode())
    hs.append(f"Message-ID: {msgid(rng)}".encode())
    if rng.random() < 0.4:
        refs = [msgid(rng) for _ in range(rng.randint(1, 6))]
        hs.append(f"In-Reply-To: {refs[-1]}".encode())
        hs.append(("References: " + "\r\n ".join(refs)).encode())
    if depth == 0:
        r = rng.random()
        if r < 0.05:
            hs.append(b"Auto-Submitted: auto-replied")
        elif r < 0.10:
            hs.append(b"List-Id: Support team <support.example.com>")
            hs.append(b"Precedence: list")
        elif r < 0.12:
            hs.append(b"Return-Path: <>")
    hs.append(b"MIME-Version: 1.0")
    return hs


def text_part(rng: random.Random, text: str, charset: str, subtype: str = "plain", declare: bool = True) -> bytes:
    """A text part; with declare=False the charset parameter is left out (the parser has to guess)."""
    cte = pick_cte(rng, charset)
    body = encode_text_body(text, charset, cte)
    param = f"; charset={charset}" if declare else ""
    head = f"Content-Type: text/{subtype}{param}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
    return head.encode() + body


def html_from_text(rng: random.Random, text: str, cids: list[str], charset: str = "utf-8") -> str:
    paras = [p for p in text.split("\n\n") if p.strip()]
    meta = f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">' if rng.random() < 0.7 else ""
    out = [f"<!DOCTYPE html><html><head>{meta}<style>p{{margin:0 0 1em}} "
           ".x{color:#333}</style></head><body style=\"font-family:Arial,sans-serif\">"]
    if rng.random() < 0.3:  # a newsletter-ish layout
        out.append('<table width="100%" cellpadding="0" cellspacing="0" border="0"><tr>'
                   '<td align="center" style="padding:20px;background:#f4f4f4">')
    for i, p in enumerate(paras):
        if rng.random() < 0.2:
            p = f'{p[:40]}<a href="https://www.example.com/t/{rng.getrandbits(32):x}?utm_source=mail">' \
                f"{p[40:80]}</a>{p[80:]}"
        if rng.random() < 0.15:
            p = f"<b>{p[:30]}</b><span class=\"x\" style=\"font-size:14px\">{p[30:]}</span>"
        out.append(f"<p>{p}</p>")
        if cids and i < len(cids):
            out.append(f'<img src="cid:{cids[i]}" width="200" height="80" alt="logo">')
    for cid in cids[len(paras):]:
        out.append(f'<img src="cid:{cid}">')
    if rng.random() < 0.1:
        out.append('<script>alert(1)</script><a href="javascript:steal()" onclick="x()">click</a>'
                   '<form action="https://evil.example/"><input name="pw"></form>')
    if rng.random() < 0.3:
        out.append("</td></tr></table>")
    out.append('<div style="color:#999;font-size:11px">--<br>Sent from my phone</div></body></html>')
    return "\n".join(out) + "\n"


def fake_pdf(rng: random.Random, size: int) -> bytes:
    head = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
            b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
            + b"4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % max(0, size - 300))
    tail = b"\nendstream\nendobj\nxref\n0 5\ntrailer\n<< /Root 1 0 R /Size 5 >>\nstartxref\n0\n%%EOF\n"
    return head + rng.randbytes(max(0, size - len(head) - len(tail))) + tail


def fake_image(rng: random.Random, size: int, kind: str) -> bytes:
    magic = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" if kind == "png" else b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
    return magic + rng.randbytes(max(0, size - len(magic)))


def filename_params(rng: random.Random, name: str) -> str:
    """Content-Disposition / Content-Type name parameters, RFC 2231 or RFC 2047 for non-ASCII."""
    try:
        name.encode("ascii")
        return f'; filename="{name}"'
    except UnicodeEncodeError:
        pass
    if rng.random() < 0.6:
        from urllib.parse import quote
        return f"; filename*=utf-8''{quote(name)}"
    return f'; filename="{Header(name, "utf-8").encode()}"'


def attachment_part(rng: random.Random, size: int, words: list[str]) -> bytes:
    r = rng.random()
    if r < 0.45:
        data, ctype = fake_pdf(rng, size), "application/pdf"
        name = rng.choice(["invoice", "Rechnung_März", "contract", "отчёт", "scan", "報告書"]) + f"_{rng.randrange(1000)}.pdf"
    elif r < 0.75:
        data, ctype = rng.randbytes(size), "application/octet-stream"
        name = rng.choice(["data.bin", "backup.zip", "photo.heic", "archive.7z", "dump.dat"])
        if name.endswith(".zip"):
            ctype, data = "application/zip", b"PK\x03\x04" + data[4:]
    elif r < 0.88:
        data, ctype = fake_image(rng, size, "jpeg"), "image/jpeg"
        name = f"IMG_{rng.randrange(10000):04d}.jpg"
    else:  # a text attachment (CSV), base64-encoded, which the baseline also get_content()s
        rows = ["id,name,amount"]
        n = 0
        while n < size:
            row = f"{rng.randrange(10**6)},{rng.choice(words)},{rng.randrange(10**5) / 100}"
            rows.append(row)
            n += len(row.encode("utf-8")) + 1
        data, ctype = ("\n".join(rows) + "\n").encode("utf-8"), "text/csv; charset=utf-8"
        name = "export.csv"
    disp = "attachment" + filename_params(rng, name)
    if rng.random() < 0.15:
        disp = "attachment"  # no filename at all
    head = (f"Content-Type: {ctype}; name=\"{name if name.isascii() else 'file'}\"\r\n"
            f"Content-Disposition: {disp}\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    return head.encode() + b64_lines(data)


def inline_image_part(rng: random.Random, cid: str, size: int) -> bytes:
    kind = rng.choice(["png", "jpeg"])
    data = fake_image(rng, size, kind)
    disp = "" if rng.random() < 0.4 else f'Content-Disposition: inline; filename="img{cid[:6]}.{kind}"\r\n'
    head = (f"Content-Type: image/{kind}\r\nContent-ID: <{cid}>\r\n{disp}"
            "Content-Transfer-Encoding: base64\r\n\r\n")
    return head.encode() + b64_lines(data)


def multipart(rng: random.Random, subtype: str, parts: list[bytes], extra: str = "") -> bytes:
    b = boundary(rng)
    out = [f"Content-Type: multipart/{subtype}; boundary=\"{b}\"{extra}\r\n\r\n".encode()]
    if rng.random() < 0.5:
        out.append(b"This is a multi-part message in MIME format.\r\n")
    for p in parts:
        out.append(f"\r\n--{b}\r\n".encode())
        out.append(p)
    out.append(f"\r\n--{b}--\r\n".encode())
    return b"".join(out)


def build_message(rng: random.Random, kind: str, target: int, depth: int = 0) -> bytes:
    """One message of about `target` bytes."""
    if rng.random() < 0.35:
        charset = rng.choice(list(LEGACY))
        words = vocab(LEGACY[charset], charset)
    elif rng.random() < 0.25:
        charset, words = "us-ascii", WORDS["en"]
    else:
        charset, words = "utf-8", WORDS["utf8"] + WORDS["en"] * 3
    raw8 = charset in LEGACY and rng.random() < 0.25
    # a few legacy-charset messages do not declare their charset at all
    declare = not (charset in LEGACY and charset != "iso-2022-jp" and rng.random() < 0.08)

    def tp(text: str, subtype: str = "plain") -> bytes:
        return text_part(rng, text, charset, subtype, declare)

    def html_of(text: str, cids: list[str]) -> str:
        return html_from_text(rng, text, cids, charset)
    hs = headers(rng, charset, words, raw8, depth)
    head_size = sum(len(h) + 2 for h in hs)
    budget = max(600, target - head_size)

    if kind == "plain":
        body = tp(paragraphs(rng, words, min(int(budget * 0.75), 400_000)))
    elif kind == "alternative":
        text = paragraphs(rng, words, min(int(budget * 0.25), 150_000))
        body = multipart(rng, "alternative", [tp(text), tp(html_of(text, []), "html")])
    elif kind == "html-only":
        text = paragraphs(rng, words, min(int(budget * 0.3), 150_000))
        body = tp(html_of(text, []), "html")
    elif kind == "related":
        n_img = rng.randint(1, 4)
        text = paragraphs(rng, words, min(int(budget * 0.12), 60_000))
        cids = [f"{rng.getrandbits(40):x}@{rng.choice(DOMAINS)}" for _ in range(n_img)]
        alt = multipart(rng, "alternative", [tp(text), tp(html_of(text, cids), "html")])
        img_budget = max(500, int((budget - len(text) * 3.5) * 0.75 / n_img))
        imgs = [inline_image_part(rng, cid, int(img_budget * rng.uniform(0.5, 1.5))) for cid in cids]
        body = multipart(rng, "related", [alt, *imgs], '; type="multipart/alternative"')
    elif kind == "attachments":
        n_att = 1 if target > 1_000_000 else rng.choice([1, 1, 1, 2, 2, 3])
        text = paragraphs(rng, words, min(max(300, int(budget * 0.1)), 20_000))
        first = tp(text)
        if rng.random() < 0.5:
            first = multipart(rng, "alternative", [first, tp(html_of(text, []), "html")])
        att_budget = max(400, int((budget - len(text) * 3) * 0.74 / n_att))
        atts = [attachment_part(rng, int(att_budget * (1.0 if n_att == 1 and target > 1_000_000 else rng.uniform(0.6, 1.4))), words)
                for _ in range(n_att)]
        body = multipart(rng, "mixed", [first, *atts])
    elif kind == "forwarded":
        note = paragraphs(rng, words, rng.randint(80, 600))
        inner_kind = rng.choices(("plain", "alternative", "html-only", "attachments"), weights=(40, 25, 10, 25))[0]
        inner = build_message(rng, inner_kind, max(1500, int(budget * 0.9)), depth + 1)
        fwd = b"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" + inner
        body = multipart(rng, "mixed", [tp(note), fwd])
    else:
        raise ValueError(kind)
    return b"\r\n".join(hs) + b"\r\n" + body


def message_target(rng: random.Random, i: int) -> int:
    if i % 100 == 7:  # one in a hundred: 2-6 MB
        return rng.randint(2_000_000, 6_000_000)
    return int(min(1_500_000, max(1_500, rng.lognormvariate(math.log(MEDIAN_TARGET), 0.9))))


def generate_corpus(count: int, seed: int = SEED) -> list[tuple[str, bytes]]:
    corpus = []
    for i in range(count):
        rng = random.Random(seed * 1_000_003 + i)
        target = message_target(rng, i)
        if target > 1_500_000:
            kind = "attachments"
        else:
            kind = rng.choices(KINDS, weights=KIND_WEIGHTS)[0]
            # text-only kinds do not grow past a few hundred KB; give big ones attachments
            if kind in ("plain", "alternative", "html-only") and target > 300_000:
                kind = "attachments"
        corpus.append((kind, build_message(rng, kind, target)))
    return corpus


# --------------------------------------------------------------------------------------------
# The two things measured
# --------------------------------------------------------------------------------------------


def baseline(raw: bytes) -> None:
    """The bare standard library: parse, walk, decode every leaf part, decode text parts."""
    msg = email.message_from_bytes(raw, policy=policy.default)
    for part in msg.walk():
        if part.is_multipart():
            continue
        part.get_payload(decode=True)
        if part.get_content_maintype() == "text":
            try:
                part.get_content()
            except Exception:
                pass


def load_parse():
    try:
        from postdesk.mail import parse
    except Exception as exc:  # noqa: BLE001 - report and carry on with the baseline
        return None, f"{type(exc).__name__}: {exc}"
    return parse, None


def run_round(func, corpus, per_kind: dict | None = None) -> tuple[float, int, list[str]]:
    """Run func over the corpus; returns (seconds, bytes, errors)."""
    errors = []
    total_bytes = 0
    gc.collect()
    clock = time.perf_counter
    t0 = clock()
    for kind, raw in corpus:
        t = clock()
        try:
            func(raw)
        except Exception as exc:  # noqa: BLE001 - parse() must never raise; count it
            errors.append(f"{kind}: {type(exc).__name__}: {exc}"[:200])
        if per_kind is not None:
            per_kind[kind] += clock() - t
        total_bytes += len(raw)
    return clock() - t0, total_bytes, errors


# --------------------------------------------------------------------------------------------
# Peak RSS of one big message (runs in a fresh subprocess)
# --------------------------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) if m else -1


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _maxrss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


def write_big_message(path: Path, size_mb: float) -> int:
    """Stream a ~size_mb MB message to `path` (text + HTML + one base64 attachment) without ever
    holding more than a small chunk in memory, so building it does not raise the RSS high-water mark."""
    rng = random.Random(SEED)
    total = int(size_mb * 1_000_000)
    words = WORDS["en"] + WORDS["utf8"]
    text = paragraphs(rng, words, 20_000)
    html = html_from_text(rng, text, [])
    b = "----=_bigmessage_boundary"
    head = (
        "From: Big Sender <big@example.com>\r\nTo: support@example.org\r\n"
        "Subject: =?utf-8?q?a_very_big_attachment_=E2=9C=93?=\r\n"
        "Date: Tue, 11 Jun 2024 10:00:00 +0200\r\nMessage-ID: <big.1@example.com>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n"
        f"--{b}\r\nContent-Type: multipart/alternative; boundary=\"{b}-alt\"\r\n\r\n"
    ).encode()
    # Fixed encodings: the text part is 8bit UTF-8 (as most mailers send it), which also means the
    # stdlib decodes the whole message to a 2-bytes-per-character str; the HTML is quoted-printable.
    head += (f"--{b}-alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
             .encode() + encode_text_body(text, "utf-8", "8bit") + f"\r\n--{b}-alt\r\n".encode())
    head += (b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
             + encode_text_body(html, "utf-8", "quoted-printable") + f"\r\n--{b}-alt--\r\n".encode())
    head += (f"\r\n--{b}\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\n"
             f"Content-Disposition: attachment; filename=\"big.bin\"\r\n"
             f"Content-Transfer-Encoding: base64\r\n\r\n").encode()
    tail = f"\r\n--{b}--\r\n".encode()
    # base64 lines of 76 chars + CRLF encode 57 bytes in 78
    n_lines = max(1, (total - len(head) - len(tail)) // 78)
    with open(path, "wb") as f:
        f.write(head)
        chunk_lines = 4096
        left = n_lines
        while left > 0:
            k = min(chunk_lines, left)
            f.write(b64_lines(rng.randbytes(57 * k)))
            left -= k
        f.write(tail)
    return path.stat().st_size


def rss_child(size_mb: float, func_name: str) -> int:
    """Print the peak RSS of one call to parse() (or the baseline) on a ~size_mb MB message."""
    if func_name == "parse":
        func, err = load_parse()
        if func is None:
            print(f"rss-child: cannot import postdesk.mail.parse ({err})")
            return 2
    else:
        func = baseline
    # Warm up on a small message so lazily imported modules (lxml, inscriptis, nh3, ...) count
    # towards the process's baseline, not towards parsing the big message.
    warm = random.Random(1)
    for kind in KINDS:
        func(build_message(warm, kind, 30_000))
    gc.collect()
    reset_ok = _reset_hwm()
    base_before = _status_kb("VmRSS")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.eml"
        write_big_message(path, size_mb)
        gc.collect()
        raw = path.read_bytes()
    gc.collect()
    hwm_building = _status_kb("VmHWM")
    reset_ok = _reset_hwm() and reset_ok
    base_after = _status_kb("VmRSS")
    t0 = time.perf_counter()
    try:
        result = func(raw)
        ok = "ok"
    except Exception as exc:  # noqa: BLE001
        result, ok = None, f"raised {type(exc).__name__}: {exc}"[:200]
    elapsed = time.perf_counter() - t0
    hwm = _status_kb("VmHWM")
    maxrss = _maxrss_kb()
    size = len(raw)
    size_kb = size / 1024
    n_att = len(getattr(result, "attachments", []) or [])
    print(f"  [{func_name}] message {size / 1e6:.1f} MB, call took {elapsed:.2f} s ({ok}"
          + (f", {n_att} attachments" if func_name == "parse" and result is not None else "") + ")")
    print(f"  [{func_name}] VmHWM reset via /proc/self/clear_refs: {'yes' if reset_ok else 'NO (numbers are upper bounds)'}; "
          f"HWM while building raw bytes: {hwm_building * 1024 / 1e6:.0f} MB")
    mb = 1024 / 1e6  # kB (KiB) -> MB
    print(f"  [{func_name}] RSS before raw bytes {base_before * mb:.0f} MB, with raw bytes {base_after * mb:.0f} MB, "
          f"peak during call VmHWM {hwm * mb:.0f} MB, ru_maxrss {maxrss * mb:.0f} MB")
    over_before = (hwm - base_before) / size_kb
    over_after = (hwm - base_after) / size_kb
    over_maxrss = (maxrss - base_before) / size_kb
    print(f"  [{func_name}] peak over baseline before the raw bytes existed: {over_before:.2f}x message size "
          f"(ru_maxrss: {over_maxrss:.2f}x)  target <{RSS_TARGET:g}x {'PASS' if over_before < RSS_TARGET else 'FAIL'}")
    print(f"  [{func_name}] peak over baseline with raw bytes held:          {over_after:.2f}x message size  "
          f"target <{RSS_TARGET:g}x {'PASS' if over_after < RSS_TARGET else 'FAIL'}")
    print(f"RSSRESULT {func_name} {over_before:.4f} {over_after:.4f} {size} {ok == 'ok'}")
    return 0


def run_rss_children(size_mb: float, funcs: list[str]) -> dict[str, tuple[float, float]]:
    results = {}
    for name in funcs:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--rss-child", str(size_mb), "--rss-func", name]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
        for line in proc.stdout.splitlines():
            if line.startswith("RSSRESULT "):
                _, fn, before, after, _size, _ok = line.split()
                results[fn] = (float(before), float(after))
            else:
                print(line)
        if proc.returncode != 0:
            print(f"  [{name}] child exited with status {proc.returncode}")
            tail = proc.stderr.strip().splitlines()[-8:]
            for line in tail:
                print(f"    {line}")
    return results


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def fmt_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000, help="messages in the corpus (default 1000)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="cap the throughput measurement at about this many seconds in total "
                         "(the corpus is cut to the prefix parse() gets through in its share)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of each (default 3)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--rss-mb", type=float, default=50, help="size of the big message for the RSS check")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS check")
    ap.add_argument("--profile", action="store_true", help="cProfile parse() over the corpus, top 25 by cumtime")
    ap.add_argument("--dump", metavar="DIR", help="write the corpus as .eml files into DIR and exit")
    ap.add_argument("--rss-child", type=float, metavar="SIZE_MB", help=argparse.SUPPRESS)
    ap.add_argument("--rss-func", default="parse", choices=["parse", "baseline"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.rss_child is not None:
        return rss_child(args.rss_child, args.rss_func)

    t0 = time.perf_counter()
    corpus = generate_corpus(args.count, args.seed)
    gen_s = time.perf_counter() - t0
    if args.dump:
        out = Path(args.dump)
        out.mkdir(parents=True, exist_ok=True)
        for i, (kind, raw) in enumerate(corpus):
            (out / f"{i:05d}-{kind}.eml").write_bytes(raw)
        print(f"wrote {len(corpus)} messages to {out}")
        return 0

    sizes = [len(raw) for _, raw in corpus]
    kinds = Counter(kind for kind, _ in corpus)
    print("postdesk.mail.parse() benchmark")
    print("=" * 72)
    print(f"Python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs; seed {args.seed}")
    print(f"corpus: {len(corpus)} messages generated in {gen_s:.1f} s")
    print(f"  median size {fmt_size(statistics.median(sizes))}, mean {fmt_size(statistics.fmean(sizes))}, "
          f"total {sum(sizes) / 1e6:.1f} MB, largest {fmt_size(max(sizes))}, smallest {fmt_size(min(sizes))}")
    print(f"  messages over 1 MB: {sum(s > 1_000_000 for s in sizes)}")
    print("  kinds: " + ", ".join(f"{k} {kinds[k]}" for k in KINDS if kinds[k]))
    cs = Counter()
    for _, raw in corpus:
        for m in re.finditer(rb"^Content-Type: text/[a-z]+(?:; charset=\"?([A-Za-z0-9_-]+))?", raw[:300_000], re.M):
            cs[m.group(1).decode().lower() if m.group(1) else "(undeclared)"] += 1
    print("  text parts by charset: " + ", ".join(f"{k} {v}" for k, v in cs.most_common()))

    parse, import_error = load_parse()
    if parse is None:
        print(f"\npostdesk.mail.parse is not importable ({import_error}); measuring the baseline only")

    # warm up: imports done lazily inside parse() and the stdlib's header registry
    for _, raw in corpus[:20]:
        baseline(raw)
        if parse is not None:
            try:
                parse(raw)
            except Exception:  # noqa: BLE001
                pass

    if args.seconds and parse is not None:
        share = args.seconds / (2 * args.rounds)
        clock = time.perf_counter
        start = clock()
        k = 0
        for _, raw in corpus:
            if clock() - start > share:
                break
            try:
                parse(raw)
            except Exception:  # noqa: BLE001
                pass
            k += 1
        if k < len(corpus):
            corpus = corpus[:k]
            print(f"--seconds {args.seconds:g}: measuring on the first {k} messages "
                  f"({sum(len(r) for _, r in corpus) / 1e6:.1f} MB)")

    n = len(corpus)
    print(f"\nthroughput: {args.rounds} interleaved rounds (baseline, parse, ...), best round of each")
    best = {"baseline": math.inf, "parse": math.inf}
    per_kind_best: dict[str, dict[str, float]] = {}
    all_errors: list[str] = []
    nbytes = sum(len(r) for _, r in corpus)
    funcs = [("baseline", baseline)] + ([("parse", parse)] if parse is not None else [])
    for r in range(args.rounds):
        for name, func in funcs:
            pk: dict[str, float] = defaultdict(float)
            secs, nbytes, errors = run_round(func, corpus, pk)
            if name == "parse" and r == 0:
                all_errors = errors
            print(f"  round {r + 1} {name:>8}: {secs:7.2f} s  {n / secs:8.1f} msg/s  {nbytes / 1e6 / secs:7.2f} MB/s"
                  + (f"  ({len(errors)} exceptions)" if errors else ""))
            if secs < best[name]:
                best[name] = secs
                per_kind_best[name] = dict(pk)

    if all_errors:
        print(f"\nparse() RAISED on {len(all_errors)} of {n} messages (it must never raise); first few:")
        for e in all_errors[:5]:
            print(f"  {e}")

    if parse is not None:
        print("\nper kind, best round (ms per message: baseline / parse, ratio of speeds):")
        kc = Counter(k for k, _ in corpus)
        for k in KINDS:
            if not kc[k]:
                continue
            b = per_kind_best["baseline"].get(k, 0) / kc[k] * 1000
            p = per_kind_best["parse"].get(k, 0) / kc[k] * 1000
            print(f"  {k:<12} {kc[k]:5d} msgs  {b:8.2f} / {p:8.2f} ms   {b / p if p else float('nan'):.2f}")

    if args.profile and parse is not None:
        print("\ncProfile of parse() over the corpus, top 25 by cumulative time:")
        prof = cProfile.Profile()
        prof.enable()
        for _, raw in corpus:
            try:
                parse(raw)
            except Exception:  # noqa: BLE001
                pass
        prof.disable()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(25)
        print("\n".join(line for line in s.getvalue().splitlines() if line.strip())[:20000])

    rss = {}
    if not args.no_rss:
        print(f"\npeak RSS while parsing one {args.rss_mb:g} MB message: 20 KB 8bit UTF-8 text, QP HTML, "
              f"base64 attachment\n(fresh subprocess each; the stdlib baseline's peak for comparison):")
        rss = run_rss_children(args.rss_mb, ["parse", "baseline"] if parse is not None else ["baseline"])

    print("\n" + "=" * 72)
    bl_rate = n / best["baseline"]
    print(f"corpus: {n} messages, median {fmt_size(statistics.median(len(r) for _, r in corpus))}, "
          f"total {nbytes / 1e6:.1f} MB, largest {fmt_size(max(len(r) for _, r in corpus))}")
    if parse is None:
        print(f"parse: n/a  baseline: {bl_rate:.1f} msg/s  ({import_error})")
        return 1
    p_rate = n / best["parse"]
    ratio = p_rate / bl_rate
    verdict = "PASS" if ratio >= THROUGHPUT_TARGET else "FAIL"
    print(f"MB/s: parse {nbytes / 1e6 / best['parse']:.2f}  baseline {nbytes / 1e6 / best['baseline']:.2f}")
    if "parse" in rss:
        before, after = rss["parse"]
        print(f"peak RSS, {args.rss_mb:g} MB message: {before:.2f}x over baseline before raw bytes, "
              f"{after:.2f}x with raw bytes held  target <{RSS_TARGET:g}x "
              f"{'PASS' if before < RSS_TARGET else 'FAIL'} / {'PASS' if after < RSS_TARGET else 'FAIL'}")
    if all_errors:
        print(f"parse() raised on {len(all_errors)} messages: FAIL (must never raise)")
    print(f"parse: {p_rate:.1f} msg/s  baseline: {bl_rate:.1f} msg/s  ratio {ratio:.2f}  "
          f"target >={THROUGHPUT_TARGET} {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
