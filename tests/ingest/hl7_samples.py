"""Realistic HL7 v2 messages as Chinese HIS/RIS systems send them (synthetic people, valid ID check digits)."""
from __future__ import annotations

from pipelines.identity import check_digit

ID_1 = "34010419850612123" + check_digit("34010419850612123")  # 合肥蜀山, born 1985-06-12
ID_2 = "34020219721103456" + check_digit("34020219721103456")  # 芜湖, born 1972-11-03
NAME_1, NAME_2 = "汪建国", "方秀英"
PHONE_1, PHONE_2 = "13805511234", "15955367890"


def msh(facility: str, mtype: str, control: str, charset: str = "UNICODE UTF-8", version: str = "2.5.1") -> str:
    return (f"MSH|^~\\&|HIS|{facility}|WANYING|WANYING|20261128093015||{mtype}|{control}|P|{version}|||AL|NE|CHN|"
            f"{charset}")


def adt_a04(facility="AHSL", control="ADT0001", charset="UNICODE UTF-8", id_number=ID_1, name=NAME_1,
            phone=PHONE_1, visit="MZ20261128001", pclass="O") -> str:
    family, given = name[0], name[1:]
    return "\r".join([
        msh(facility, "ADT^A04^ADT_A01", control, charset),
        "EVN|A04|20261128093000",
        f"PID|1||M0012345^^^{facility}^MR~{id_number}^^^CHN^NNCHN||{family}^{given}||19850612|M|||"
        f"合肥市蜀山区长江西路^^合肥^安徽^230031||^PRN^CP^^^^^^^^^{phone}~0551-62283114",
        f"PV1|1|{pclass}|呼吸内科门诊^^^{facility}||||D0231^李^明|||呼吸内科|||||||||{visit}",
    ]) + "\r"


def orm_o01(facility="AHSL", control="ORM0001", charset="UNICODE UTF-8", control_code="NW",
            items=(("CT0401", "胸部+上腹部CT平扫", "CT"),)) -> str:
    segs = [msh(facility, "ORM^O01^ORM_O01", control, charset),
            f"PID|1||M0012345^^^{facility}^MR~{ID_1}^^^CHN^ID||汪^建国||19850612|M",
            "PV1|1|O|呼吸内科门诊||||D0231^李^明||||||||||||MZ20261128001"]
    for n, (code, name, modality) in enumerate(items, start=1):
        segs.append(f"ORC|{control_code}|SQ2026112800{n}|ACC2026112800{n}||||||20261128094000|||D0231^李^明")
        segs.append(f"OBR|{n}|SQ2026112800{n}|ACC2026112800{n}|{code}^{name}^L|||20261128094000|||||||||"
                    f"D0231^李^明||ACC2026112800{n}||||||{modality}")
    return "\r".join(segs) + "\r"


def oru_r01(facility="AHSL", control="ORU0001", charset="UNICODE UTF-8", status="F") -> str:
    return "\r".join([
        msh(facility, "ORU^R01^ORU_R01", control, charset),
        f"PID|1||M0012345^^^{facility}^MR~{ID_2}^^^CHN^SFZ||方^秀英||19721103|F|||||{PHONE_2}",
        "ORC|RE|SQ20261128001|ACC20261128001",
        f"OBR|1|SQ20261128001|RPT20261128001|CT0401^胸部CT平扫^L|||20261128100000|||||||||||ACC20261128001||||"
        f"20261128113000|||{status}|||||||R0045&王&放射",
        "OBX|1|TX|^^^&GDT^影像所见||双肺纹理清晰，右肺上叶见一约6mm磨玻璃结节\\.br\\纵隔未见肿大淋巴结。||||||F",
        "OBX|2|TX|^^^&IMP^诊断意见||右肺上叶磨玻璃结节，建议年度复查。||||||F",
        "ZDS|1.2.156.112605.20261128.1001^WANYING^Application^DICOM",
    ]) + "\r"


def zwy(facility="AHSL", control="ZWY0001", trigger="Z01") -> str:
    segs = [msh(facility, f"ZWY^{trigger}", control)]
    if trigger == "Z01":
        segs += [f"PID|1||M0012345^^^{facility}^MR~{ID_1}^^^CHN^ID||汪^建国", "PV1|1|O|||||||||||||||||MZ20261128001"]
    segs.append("ZDR|D0231|呼吸内科|WS-3-12")
    return "\r".join(segs) + "\r"


def encode(text: str, charset: str) -> bytes:
    return text.encode({"UNICODE UTF-8": "utf-8", "GB 18030-2000": "gb18030", "GBK": "gbk", "": "gbk"}[charset])
