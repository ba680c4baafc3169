from __future__ import annotations

import codecs
import gzip

import pytest

from ticketcore.contract import SchemaError
from ticketcore.dialect import Dialect, detect_dialect, detect_encoding, has_trailing_delimiter, sniff_delimiter


@pytest.mark.parametrize(
    ("data", "encoding", "bom"),
    [
        (b"a,b\n1,2\n", "utf-8", False),
        (codecs.BOM_UTF8 + b"a,b\n", "utf-8-sig", True),
        ("a,b\nh\u00e9,1\n".encode("utf-16"), "utf-16", True),
        ("a;b\r\n\u00e9t\u00e9;\u20ac\r\n".encode("cp1252"), "cp1252", False),
    ],
)
def test_encodings(data, encoding, bom):
    assert detect_encoding(data) == (encoding, bom)


def test_utf8_cut_mid_character_is_still_utf8():
    data = "id,name\n1,Zo\u00eb\n".encode()
    assert detect_encoding(data[:-3]) == ("utf-8", False)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (gzip.compress(b"a,b\n1,2\n"), "gzip"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "PNG"),
        (b"ab\x00cd", "NUL"),
    ],
)
def test_binary_is_not_text(data, what):
    with pytest.raises(SchemaError, match="not text") as err:
        detect_encoding(data)
    assert what in str(err.value)


def test_empty_is_an_error():
    with pytest.raises(SchemaError, match="empty file"):
        detect_dialect(b"")
    with pytest.raises(SchemaError, match="empty file"):
        detect_dialect(b"  \n\n")


@pytest.mark.parametrize("delim", [",", ";", "\t", "|"])
def test_delimiter_from_header_line(delim):
    header = delim.join(["Ticket ID", "Created At", '"Notes, free text"'])
    d = detect_dialect((header + "\n1" + delim + "2024-01-01" + delim + "x\n").encode())
    assert d.delimiter == delim
    assert d.headers == ["Ticket ID", "Created At", "Notes, free text"]


def test_quoted_delimiters_do_not_count():
    assert sniff_delimiter('"a;b;c;d",x,y') == ","


def test_trailing_delimiter_and_padding_and_crlf():
    d = detect_dialect(b" Ticket ID , Created At ,\r\n1,2024-01-01,\r\n")
    assert d.headers == ["Ticket ID", "Created At"]
    assert d.line_terminator == "\r\n"


def test_utf16_headers_decoded():
    d = detect_dialect("Ticket ID\tCr\u00e9\u00e9\n1\t2024-01-01\n".encode("utf-16"))
    assert (d.encoding, d.delimiter, d.headers) == ("utf-16", "\t", ["Ticket ID", "Cr\u00e9\u00e9"])


def test_trailing_delimiter_needs_the_records_to_agree():
    # Every line ends with the delimiter: recorded, the empty last header dropped.
    d = detect_dialect(b"a,b,\n1,2,\n3,4,\n")
    assert (d.headers, d.trailing_delimiter) == (["a", "b"], True)
    # Only the header line has it: the records are as wide as the named headers, nothing to add.
    d = detect_dialect(b"a,b,\n1,2\n3,4\n")
    assert (d.headers, d.trailing_delimiter) == (["a", "b"], False)
    # A header alone cannot be checked against records: it is believed.
    assert detect_dialect(b"a;b;\n").trailing_delimiter is True
    assert has_trailing_delimiter(["a", "b", ""], [["1", "2", ""], ["1", "2"], ["3", "4", "x"]]) is True
    assert has_trailing_delimiter(["a", "b"], [["1", "2", ""]]) is False


def test_dialect_from_dict_is_the_inverse_of_to_dict():
    d = detect_dialect(b"a|b|\r\n1|2|\r\n")
    assert Dialect.from_dict(d.to_dict()) == d
    # The inspect JSON of a dialect written before `trailing_delimiter` existed: the default applies.
    old = {k: v for k, v in d.to_dict().items() if k != "trailing_delimiter"}
    assert Dialect.from_dict({**old, "unknown_later_field": 1}).trailing_delimiter is False
