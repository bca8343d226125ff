from __future__ import annotations

import pytest

from pipelines.hl7.message import Hl7Error, parse, parse_ts
from tests.ingest.hl7_samples import NAME_1, adt_a04, encode


@pytest.mark.parametrize("charset", ["UNICODE UTF-8", "GB 18030-2000", "GBK"])
def test_declared_charsets_decode_chinese(charset):
    msg = parse(encode(adt_a04(charset=charset), charset))
    pid = msg.segment("PID")
    assert pid.get(5, comp=1) + pid.get(5, comp=2) == NAME_1
    assert msg.segment("PV1").get(3) == "呼吸内科门诊"
    assert msg.charset == ("utf-8" if charset == "UNICODE UTF-8" else "gb18030")


def test_charset_detected_when_missing_or_wrong():
    gbk = adt_a04(charset="").encode("gbk")
    assert parse(gbk).charset == "gb18030"
    lying = adt_a04(charset="UNICODE UTF-8").encode("gbk")  # says UTF-8, sends GBK
    msg = parse(lying)
    assert msg.charset == "gb18030" and "not valid UNICODE UTF-8" in msg.notes[0]
    assert msg.segment("PID").get(5, comp=2) == NAME_1[1:]


def test_gbk_trail_bytes_that_look_like_separators_do_not_split_fields():
    # "|" (0x7C), "^" (0x5E) and "\\" (0x5C) occur as GBK trail bytes: 億 = 83 7C, 僞 = 83 5E, 俓 = 82 5C
    tricky = "億僞俓"
    assert all(b in tricky.encode("gbk") for b in (b"|", b"^", b"\\"))
    text = adt_a04(charset="GBK").replace("呼吸内科门诊", tricky)
    assert parse(text.encode("gbk")).segment("PV1").get(3) == tricky


def test_custom_encoding_characters_escapes_repetitions_components():
    raw = ("MSH#*!@%#HIS#AHSL#WY#WY#20261128#\u0020#ADT*A08#C9#P#2.4\r"
           "PID#1##A1*%ID!B2*%MR##Li*Lei##19800101#F###Road%Unit 1 @F@ @S@ @T@ @R@ @E@ @X41@\r").encode()
    msg = parse(raw)
    assert msg.encoding.field == "#" and msg.encoding.component == "*" and msg.encoding.repetition == "!"
    pid = msg.segment("PID")
    assert pid.reps(3) == ["A1*%ID", "B2*%MR"]
    assert pid.get(3, rep=2, comp=1) == "B2"
    assert pid.get(11) == "Road"  # sub-component 1
    assert pid.components(11)[0] == "Road"
    assert pid.get(11, sub=2) == "Unit 1 # * % ! @ A"  # \F\ \S\ \T\ \R\ \E\ and hex, with these characters


def test_standard_escapes_and_line_breaks():
    raw = ("MSH|^~\\&|A|AHSL|B|C|20261128||ORU^R01|X|P|2.5.1\r"
           "OBX|1|TX|^^^&GDT||line1\\.br\\a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\H\\bold\\N\\ \\Zunknown\\").encode()
    value = parse(raw).segment("OBX").get(5)
    assert value == "line1\na|b^c&d~e\\fbold \\Zunknown\\"


@pytest.mark.parametrize("raw, location", [
    (b"", "MSH"),
    (b"PID|1||x", "MSH"),
    (b"MSHA^~\\&|x", "MSH-1"),
    (b"MSH|^^\\&|A|B", "MSH-2"),
    (b"MSH|^~\\&|A|AHSL|B|C|2026||||P|2.5", "MSH-9"),
    (b"MSH|^~\\&|A|AHSL|B|C|2026||ADT^A04||P|2.5", "MSH-10"),
    (b"MSH|^~\\&|A|AHSL|B|C|2026||ADT^A04|1|P|2.5\rP1|x", "segment 2"),
    (b"MSH|^~\\&|A|AHSL|B|C|2026||ADT^A04|1|P|2.5||||||UNICODE UTF-8\rPID|\xff\xfe\xff", "MSH-18"),
])
def test_rejects_say_where(raw, location):
    with pytest.raises(Hl7Error) as err:
        parse(raw)
    assert err.value.location == location and err.value.reason


def test_timestamps_default_to_china_time():
    assert parse_ts("20261128093015", "X").utcoffset().total_seconds() == 8 * 3600
    assert parse_ts("202611280930+0000", "X").hour == 9
    with pytest.raises(Hl7Error):
        parse_ts("20261332", "X")
