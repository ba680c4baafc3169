"""The quote-aware scan, whole and streamed: the same answer however the text is cut into pieces."""

from __future__ import annotations

import codecs
import random

import pytest

from ticketcore.dialect import QuoteScanner, Scan, scan, scan_stream


def walk(text: str, delimiter: str) -> Scan:
    """The reference: one character at a time, the way the CSV readers go (the first version of `scan`). A blank
    line is one whose text outside quoted values is empty or a lone "\r" before its "\n"."""
    crlf = lf = 0
    line, i, n = 1, 0, len(text)
    field_start = True
    line_begin, blank, broken, cr_lines = 0, [], None, []
    while i < n:
        ch = text[i]
        if field_start and ch == '"':
            j = i + 1
            while True:
                k = text.find('"', j)
                if k < 0:
                    if broken is None and ("\n" in text[i:] or "\r" in text[i:]):
                        broken = line
                    return Scan(crlf, lf, line, tuple(blank), broken, whitespace_line(text), tuple(cr_lines))
                if k + 1 < n and text[k + 1] == '"':
                    j = k + 2
                    continue
                break
            if broken is None and ("\n" in text[i:k] or "\r" in text[i:k]):
                broken = line
            line += text.count("\n", i, k)
            i, field_start = k + 1, False
            continue
        i += 1
        if ch == "\n":
            if text[line_begin : i - 1] in ("", "\r"):
                blank.append(line)
                cr_lines += [line] if text[line_begin : i - 1] == "\r" else []
            lf, line, field_start, line_begin = lf + 1, line + 1, True, i
        elif ch == "\r" and text.startswith("\n", i):
            if text[line_begin : i - 1] == "":
                blank.append(line)
                cr_lines.append(line)
            crlf, line, i, field_start = crlf + 1, line + 1, i + 1, True
            line_begin = i
        else:  # a delimiter starts a field; anything else (a quote here, a lone "\r") is data
            field_start = ch == delimiter
    return Scan(crlf, lf, None, tuple(blank), broken, whitespace_line(text), tuple(cr_lines))


def whitespace_line(text: str) -> int | None:
    """The first line after the first holding only characters up to a space (not "\n"), neither empty nor a lone
    "\r", and ended by a "\n"."""
    for number, line in enumerate(text.split("\n")[1:-1], start=2):
        if line and line != "\r" and all(c <= " " for c in line):
            return number
    return None


def fed(text: str, delimiter: str, cuts: list[int]) -> Scan:
    scanner = QuoteScanner(delimiter)
    for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True):
        scanner.feed(text[a:b])
    return scanner.result()


CASES = [
    # When a quote is left open, the counts are of the record ends before it.
    ('a,b\n1,"x\n2,y\n', ",", Scan(0, 1, 2, (), 2)),
    ('a,b\n1,"x ""quoted"" \n more"\n2,"open\n', ",", Scan(0, 2, 4, (), 2)),
    ('a,b\n1,5" screen\n2,y\n', ",", Scan(0, 3, None)),  # a quote inside an unquoted value is data
    ('a,b\r\n1,"two\r\nlines"\r\n2,"x"""\n', ",", Scan(2, 1, None, (), 2)),  # "\r\n" inside quotes is data
    ('a;b\r\n"1;2";"\r\n', ";", Scan(1, 0, 2, (), 2)),
    ('"a""', ",", Scan(0, 0, 1)),  # an escaped quote, then the end: still open
    ('"a"""', ",", Scan(0, 0, None)),
    ('x,"a" "b",\n', ",", Scan(0, 1, None)),  # a quote after the closing one and a space is data
    ('x\r"a\n', ",", Scan(0, 1, None)),  # a lone "\r" does not start a field
    ('a\tb\n"1\t2"\t"3\n', "\t", Scan(0, 1, 2, (), 2)),
    # Blank lines outside quoted values (the readers skip them), not those inside one.
    ('a,b\n\n1,"x\n\ny"\r\n\r\n2,z\n\n', ",", Scan(2, 4, None, (2, 6, 8), 3, None, (6,))),
    # Where the first quoted value holding a line break opens ("\r" alone counts): None, the file splits by lines.
    ('a,b\n1,"x,y"\n2,"p\rq"\n', ",", Scan(0, 3, None, (), 3)),
    ('a,b\n1,"x,y"\n2,"p q"\n', ",", Scan(0, 3, None, (), None)),
    # A line of whitespace only (not blank): the file is read whole.
    ('a,b\n1,2\n \t\r\n3,4\n', ",", Scan(1, 3, None, (), None, 3)),
    ('a,b\n\r\n\n1,2\n', ",", Scan(1, 3, None, (2, 3), None, None, (2,))),
    ('\n\na\n', ",", Scan(0, 3, None, (1, 2))),
]


@pytest.mark.parametrize(("text", "delimiter", "expected"), CASES)
def test_scan_whole_and_cut_at_every_point(text, delimiter, expected):
    assert scan(text, delimiter) == walk(text, delimiter) == expected
    for cut in range(len(text) + 1):
        assert fed(text, delimiter, [cut]) == expected, cut
    assert fed(text, delimiter, list(range(1, len(text)))) == expected  # one character at a time


def test_scan_agrees_with_the_character_walk_on_random_text():
    rng = random.Random(7)
    alphabet = ['"', '"', ",", ";", "\n", "\r", "\r\n", "a", "b", " ", "\t"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        delimiter = rng.choice([",", ";"])
        expected = walk(text, delimiter)
        assert scan(text, delimiter) == expected, repr(text)
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(0, 4)))) if len(text) > 1 else []
        assert fed(text, delimiter, cuts) == expected, (repr(text), cuts)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_scan_stream_of_bytes_in_every_encoding():
    text = 'Ticket ID,Subject\r\nT1,"Zoë ""naïve""\r\nfaçade \u2013 東京"\r\nT2,"€ open\r\nT3,x\r\n'
    expected = walk(text, ",")
    assert expected == Scan(2, 0, 4, (), 2)
    for encoding, data in [
        ("utf-8", text.encode()),
        ("utf-8-sig", codecs.BOM_UTF8 + text.encode()),
        ("utf-16", text.encode("utf-16")),
        ("cp1252", text.replace("東京", "").encode("cp1252")),
    ]:
        for size in (1, 2, 3, 7, len(data)):  # cuts inside multibyte characters, the BOM and "\r\n"
            assert scan_stream(pieces(data, size), encoding, ",") == expected, (encoding, size)


def test_a_bom_first_is_not_text():
    # Without the BOM dropped, the quote that opens the first field would look like data after other characters.
    assert scan_stream([codecs.BOM_UTF8 + b'"a\n'], "utf-8-sig", ",").open_quote_line == 1
    assert scan_stream(pieces('"a\n'.encode("utf-16"), 1), "utf-16", ",").open_quote_line == 1
    assert scan_stream([], "utf-8", ",") == Scan(0, 0, None)


def test_an_unclosed_quote_far_past_the_head_is_found_on_its_line():
    good = "".join(f'T{i},"line one\nline two, ""quoted"""\n' for i in range(20_000))
    data = ("id,text\n" + good + 'T-bad,"never closed\nT-next,x\n').encode()
    assert scan_stream(pieces(data, 64 * 1024), "utf-8", ",") == Scan(0, 20_001, 2 + 2 * 20_000, (), 2)
