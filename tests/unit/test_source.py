"""ticketcore.source: compressed heads and streams, the encoding of a whole file, the fallback for stray bytes."""

from __future__ import annotations

import codecs
import gzip
import io
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticketcore.contract import SchemaError
from ticketcore.dialect import decode_head, detect_encoding
from ticketcore.source import (
    EncodingVerdict,
    compression_of,
    encoding_verdict,
    fallback_decode,
    gunzip,
    text_head,
    text_name,
    transcode,
    unzip_member,
)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


def zipped(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


# ---------------------------------------------------------------- the encoding of the whole file


def test_valid_utf8_throughout_is_utf8_without_a_copy():
    data = "id,name\n1,Zoë\n2,東京\n".encode()
    assert encoding_verdict(pieces(data, 5)) == EncodingVerdict("utf-8")
    assert encoding_verdict([codecs.BOM_UTF8 + data]) == EncodingVerdict("utf-8-sig")
    assert encoding_verdict([b"a,b\n" * 1000]) == EncodingVerdict("utf-8")


def test_windows_1252_is_chosen_only_when_no_byte_sequence_is_utf8():
    data = b"a,b\n" * 100_000 + "1,Café\n".encode("cp1252")  # the first accent far after any head
    verdict = encoding_verdict(pieces(data, 64 * 1024))
    assert verdict == EncodingVerdict("cp1252") and verdict.read_as == "cp1252"
    # Its undefined bytes would be U+FFFD in Java: rewritten, as their Latin-1 code points.
    undefined = encoding_verdict([b"a\x81,b\xe9\n"])
    assert (undefined.encoding, undefined.transcode, undefined.read_as) == ("cp1252", True, "utf-8")
    assert b"".join(transcode([b"a\x81,b\xe9\n"], undefined)).decode() == "a\x81,bé\n"


def test_stray_bytes_in_a_utf8_file_are_decoded_alone_and_reported_by_line():
    data = "h\nMüller\n".encode() + b"Caf\xe9\n\n" + "東京\n".encode() + b"\x93q\x94 \x80\n"
    for size in (1, 2, 3, 7, len(data)):  # a sequence cut between pieces is not a stray byte
        verdict = encoding_verdict(pieces(data, size))
        assert (verdict.encoding, verdict.fallback_sequences, verdict.fallback_lines) == ("utf-8", 4, 2), size
        assert verdict.fallback_line_numbers == (3, 6) and verdict.transcode
        text = b"".join(transcode(pieces(data, size), verdict)).decode("utf-8")
        assert text == "h\nMüller\nCafé\n\n東京\n“q” €\n"


def test_a_sequence_cut_by_the_end_of_the_file_is_a_stray_byte():
    verdict = encoding_verdict(["a,b\nü\n".encode() + b"x\xc3"])
    assert (verdict.fallback_sequences, verdict.fallback_line_numbers) == (1, (3,))
    assert b"".join(transcode(["a,b\nü\n".encode() + b"x\xc3"], verdict)).decode() == "a,b\nü\nxÃ"


def test_utf16_is_decided_by_its_bom_without_reading_further():
    consumed = []

    def stream():
        for piece in ("a,b\n" + "é" * 10).encode("utf-16"), b"\xff" * 10:
            consumed.append(piece)
            yield piece

    assert encoding_verdict(stream()) == EncodingVerdict("utf-16")
    assert len(consumed) == 1


def test_reported_line_numbers_are_capped_and_all_counted(monkeypatch):
    monkeypatch.setattr("ticketcore.source.MAX_REPORTED_LINES", 3)
    data = "ü\n".encode() + b"\xe9\n" * 10
    verdict = encoding_verdict([data])
    assert (verdict.fallback_lines, verdict.fallback_line_numbers) == (10, (2, 3, 4))


def test_fallback_decode_never_gives_the_replacement_character():
    text = fallback_decode(bytes(range(0x80, 0x100)))
    assert "\ufffd" not in text and len(text) == 128
    assert fallback_decode(b"\x80\x81\xe9") == "€\x81é"


_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=80)
# Characters of one byte in Windows-1252; alone (after ASCII), such a byte is never valid UTF-8.
_CP1252_ONLY = st.sampled_from("éèàüöäßçñ€\u201c\u201d\u2018\u2019\u2013\u2014\u2026")


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(_TEXT, min_size=1, max_size=20),
    injected=st.lists(st.tuples(st.integers(0, 19), _CP1252_ONLY), min_size=1, max_size=4),
    size=st.integers(1, 64),
)
def test_utf8_with_injected_cp1252_bytes_decodes_to_the_original(lines, injected, size):
    # Every line holds a valid multi-byte character, so the file is UTF-8; then a few Windows-1252 bytes.
    lines = [f"é{line}" for line in lines]
    encoded = [line.encode("utf-8") for line in lines]
    expected_lines = set()
    for index, char in injected:
        at = index % len(lines)
        # After a newline or an ASCII character: a lone byte >= 0x80 there cannot complete a UTF-8 sequence.
        encoded[at] = encoded[at] + b"." + char.encode("cp1252")
        lines[at] = lines[at] + "." + char
        expected_lines.add(at + 1)
    data = b"\n".join(encoded) + b"\n"
    verdict = encoding_verdict(pieces(data, size))
    assert verdict.encoding == "utf-8" and verdict.fallback_line_numbers == tuple(sorted(expected_lines))
    text = b"".join(transcode(pieces(data, size), verdict)).decode("utf-8")
    assert text == "\n".join(lines) + "\n"
    assert text.count("\n") == data.count(b"\n")  # line numbers do not move


# ---------------------------------------------------------------- the head decides the same way


def test_head_detection_follows_the_whole_file_rule():
    mixed = "id,name\n1,Zoë\n".encode() + b"2,Caf\xe9\n"
    assert detect_encoding(mixed) == ("utf-8", False)
    text, encoding, _ = decode_head(mixed)
    assert (text, encoding) == ("id,name\n1,Zoë\n2,Café\n", "utf-8")
    assert detect_encoding("id,name\n1,Café\n".encode("cp1252")) == ("cp1252", False)
    assert "\ufffd" not in decode_head(b"id,name\n1,\x81x\xe9\n")[0]


# ---------------------------------------------------------------- compressed uploads


CSV = b"Ticket ID,Created At\nT1,2024-01-01\nT2,2024-01-02\n"


def test_compression_is_read_from_the_magic_number():
    assert compression_of(gzip.compress(CSV)) == "gzip"
    assert compression_of(zipped({"t.csv": CSV})) == "zip"
    assert compression_of(CSV) is None


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_heads_are_decompressed(method):
    big = CSV + b"T3,2024-01-03\n" * 100_000
    gz = gzip.compress(big)
    assert text_head(gz, True, 1 << 30) == text_head(gz, True, 1 << 30)
    whole = text_head(gz, True, len(big) + 1)
    assert (whole.data, whole.compression, whole.complete) == (big, "gzip", True)
    cut = text_head(gz[:2000], False, 64)
    assert (cut.data, cut.complete) == (big[:64], False)
    # Concatenated gzip members are one text.
    assert text_head(gzip.compress(CSV) + gzip.compress(b"T9,x\n"), True, 1000).data == CSV + b"T9,x\n"

    archive = zipped({"export/t.csv": big}, method)
    head = text_head(archive[:4096], False, 100)
    assert (head.data, head.compression, head.member, head.complete) == (big[:100], "zip", "export/t.csv", False)
    assert text_head(archive, True, 100).data == big[:100]
    assert text_head(b"a,b\n", True, 100) == text_head(b"a,b\n", True, 100)
    assert text_head(b"a,b\n", True, 100).complete


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({}, "holds no file"),
        ({"a.csv": CSV, "b.csv": CSV}, r"holds 2 files \(a.csv, b.csv\)"),
        ({"report.pdf": b"%PDF-1.4"}, r"holds report.pdf, not a .csv file"),
        ({"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>"}, "Excel workbook"),
        ({"dir/": b"", "__MACOSX/._a.csv": b"x"}, "holds no file"),
    ],
)
def test_a_zip_must_hold_exactly_one_csv(members, message):
    archive = zipped(members)
    with pytest.raises(SchemaError, match=message):
        text_head(archive, True, 100)
    with pytest.raises(SchemaError, match=message):
        unzip_member(io.BytesIO(archive))


def test_a_zip_head_names_a_first_member_that_is_not_a_csv():
    archive = zipped({"notes.txt": b"x" * 10_000, "a.csv": CSV})
    with pytest.raises(SchemaError, match=r"notes\.txt, not a \.csv"):
        text_head(archive[:200], False, 100)


def test_streams_are_decompressed_in_bounded_pieces():
    big = CSV * 200_000
    gz = gzip.compress(big) + gzip.compress(b"T9,x\n")
    out = list(gunzip(pieces(gz, 100_000), chunk=1 << 20))
    assert b"".join(out) == big + b"T9,x\n" and max(map(len, out)) <= 1 << 20
    with pytest.raises(SchemaError, match="cut short"):
        list(gunzip([gz[: len(gz) // 2]]))
    with pytest.raises(SchemaError, match="corrupt"):
        list(gunzip([gz[:20] + b"\x00" * 200 + gz[220:]]))

    name, text = unzip_member(io.BytesIO(zipped({"t.csv": big})), chunk=1 << 20)
    assert name == "t.csv" and b"".join(text) == big


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Tickets.csv.gz", "Tickets.csv"), ("t.ZIP", "t.csv"), ("a.csv", "a.csv"), ("raw", "raw.csv")],
)
def test_text_name(name, expected):
    assert text_name(name) == expected
