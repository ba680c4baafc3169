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


def test_excel_sep_line_is_a_preamble_and_names_the_delimiter():
    d = detect_dialect(b"sep=;\r\nTicket ID;Created, local;Subject\r\nT1;2024-01-01;x\r\n")
    assert (d.delimiter, d.headers) == (";", ["Ticket ID", "Created, local", "Subject"])
    assert (d.preamble_lines, d.header_lines, d.skip_records, d.lines_before_data) == (1, 1, 2, 2)
    # Blank lines before the header are lines of the file but not records the reader returns.
    d = detect_dialect(b"\n\nSEP=,\na,b\n1,2\n")
    assert (d.delimiter, d.headers, d.preamble_lines, d.skip_records, d.lines_before_data) == (",", ["a", "b"], 3, 2, 4)


def test_a_header_cell_with_line_breaks_counts_its_lines():
    d = detect_dialect(b'id,"Created\r\n(UTC)",subject\r\n1,2024-01-01,x\r\n')
    assert d.headers == ["id", "Created\r\n(UTC)", "subject"]
    assert (d.header_lines, d.skip_records, d.lines_before_data) == (2, 1, 2)


@pytest.mark.parametrize(("data", "fields"), [
    (b"a,b,,\n1,2,,\n3,4,,\n", 2),  # Excel's used range: two empty columns
    (b"a,b,,,\n1,2,,,\n", 3),
    (b"a,b,,\n1,2,\n3,4,\n", 1),  # the header has two, the records one
    (b"a,b,,\n1,2\n3,4\n", 0),  # only the header line has them
])
def test_any_number_of_empty_trailing_columns(data, fields):
    d = detect_dialect(data)
    got = (d.headers, d.trailing_fields, d.extra_fields, d.trailing_delimiter)
    assert got == (["a", "b"], fields, fields, fields > 0)


def test_a_dialect_from_before_trailing_fields_reads_one_extra_field():
    old = {"encoding": "utf-8", "bom": False, "delimiter": ",", "headers": ["a"], "line_terminator": "\n",
           "trailing_delimiter": True}
    assert Dialect.from_dict(old).extra_fields == 1
    assert (Dialect.from_dict(old).skip_records, Dialect.from_dict(old).lines_before_data) == (1, 1)


def test_too_many_columns_is_a_schema_error_naming_the_count_and_the_limit():
    from ticketcore.dialect import MAX_COLUMNS

    header = ",".join(f"c{i}" for i in range(MAX_COLUMNS + 1)).encode()
    with pytest.raises(SchemaError, match=f"{MAX_COLUMNS + 1:,} columns; at most {MAX_COLUMNS:,}"):
        detect_dialect(header + b"\n")
    assert len(detect_dialect(",".join(f"c{i}" for i in range(MAX_COLUMNS)).encode() + b"\n").headers) == MAX_COLUMNS


def test_a_header_row_longer_than_the_head_is_refused_not_cut():
    from ticketcore.dialect import HEAD_BYTES

    data = (",".join(f"column_{i}" for i in range(100_000)) + "\n1,2\n").encode()
    with pytest.raises(SchemaError, match=r"header row too long: it does not end within the first 256 KiB \(2[0-9,]+ "
                                          r"columns so far\); at most 2,000"):
        detect_dialect(data[:HEAD_BYTES])
    # a whole file that is one header line without a line end is not cut: it is all there
    assert detect_dialect(b"a,b,c").headers == ["a", "b", "c"]


def test_a_file_of_only_a_sep_line_has_no_header():
    with pytest.raises(SchemaError, match="no header line"):
        detect_dialect(b"sep=;\r\n\r\n")
