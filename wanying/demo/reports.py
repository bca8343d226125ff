"""Chinese report text (检查所见 / 诊断意见) per exam item: normal reads, positive and uncertain findings.

Each item has a normal read and a few abnormal ones; ``{size}`` and similar fields are filled from the seeded
random source so two patients do not share the same sentence.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class ReportText:
    findings: str
    impression: str
    finding_key: str
    critical: bool = False


NORMAL = "normal"

_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "CT_CHEST": {
        NORMAL: ("胸廓对称。双肺纹理清晰，走行自然，双肺野内未见明显异常密度影。气管及主支气管通畅。纵隔居中，"
                 "纵隔内未见明显肿大淋巴结。心影大小形态未见明显异常。双侧胸腔未见积液，胸膜未见增厚。",
                 "胸部CT平扫未见明显异常。"),
        "nodule": ("胸廓对称。{side}肺上叶尖段见一磨玻璃密度结节，大小约{size}mm×{size2}mm，边界尚清，"
                   "其内未见明显实性成分。余双肺野未见明显实变影。气管及主支气管通畅。纵隔内未见明显肿大淋巴结。"
                   "双侧胸腔未见积液。",
                   "{side}肺上叶磨玻璃结节，建议3-6个月后复查。"),
        "inflammation": ("双肺纹理增多、紊乱，{side}肺下叶见斑片状模糊影，边界不清。气管及主支气管通畅。"
                         "纵隔居中，未见明显肿大淋巴结。双侧胸腔未见积液。",
                         "{side}肺下叶炎症，建议治疗后复查。"),
        "fibrosis": ("{side}肺下叶见条索状高密度影，邻近胸膜稍增厚。余肺野未见明显异常密度影。纵隔居中。"
                     "双侧胸腔未见积液。",
                     "{side}肺下叶条索影，考虑慢性炎症或纤维灶可能，请结合临床。"),
    },
    "CT_HEAD": {
        NORMAL: ("脑实质内未见明显异常密度影，灰白质分界清晰。脑室系统大小形态未见异常，脑沟、脑裂未见增宽。"
                 "中线结构居中。颅骨骨质未见明显异常。",
                 "颅脑CT平扫未见明显异常。"),
        "lacunar": ("{side}侧基底节区见斑点状低密度影，直径约{size}mm，边界较清。余脑实质未见明显异常密度影。"
                    "脑室系统未见扩大，中线结构居中。",
                    "{side}侧基底节区腔隙性脑梗死可能，请结合临床及MRI检查。"),
        "haemorrhage": ("{side}侧基底节区见团片状高密度影，大小约{size}mm×{size2}mm，CT值约65HU，周围见低密度水肿带，"
                        "邻近侧脑室受压，中线结构稍向对侧移位。",
                        "{side}侧基底节区脑出血（危急值，已电话通知临床）。"),
    },
    "CT_ABDOMEN": {
        NORMAL: ("肝脏大小形态正常，肝实质密度均匀，未见明显异常密度影。胆囊不大，壁不厚，腔内未见明显异常密度影。"
                 "胰腺、脾脏及双肾未见明显异常。腹膜后未见明显肿大淋巴结。",
                 "上腹部CT平扫未见明显异常。"),
        "fatty_liver": ("肝脏体积稍大，肝实质密度弥漫性减低，CT值约{hu}HU，低于脾脏。胆囊不大，腔内未见明显异常密度影。"
                        "胰腺、脾脏及双肾未见明显异常。",
                        "脂肪肝。"),
        "gallstone": ("肝脏大小形态正常，实质密度均匀。胆囊腔内见类圆形高密度影，直径约{size}mm。"
                      "胰腺、脾脏及双肾未见明显异常。",
                      "胆囊结石。"),
        "cyst": ("肝{segment}段见类圆形低密度影，直径约{size}mm，边界清晰，CT值约8HU。胆囊、胰腺、脾脏未见明显异常。",
                 "肝{segment}段囊肿可能，必要时增强扫描。"),
    },
    "MR_HEAD": {
        NORMAL: ("脑实质内未见明显异常信号影，灰白质分界清晰。脑室系统未见扩大，脑沟、脑裂未见增宽。中线结构居中。"
                 "垂体及视交叉未见异常。",
                 "头颅MRI平扫未见明显异常。"),
        "white_matter": ("双侧侧脑室旁及半卵圆中心见多发斑点状长T1长T2信号影，FLAIR呈高信号，边界欠清。"
                         "脑室系统未见扩大，中线结构居中。",
                         "双侧侧脑室旁及半卵圆中心多发缺血灶，脑白质脱髓鞘改变可能。"),
    },
    "MR_LSPINE": {
        NORMAL: ("腰椎生理曲度存在，各椎体形态及信号未见明显异常。各椎间盘未见明显突出，椎管未见狭窄。"
                 "脊髓圆锥位置及信号未见异常。",
                 "腰椎MRI平扫未见明显异常。"),
        "herniation": ("腰椎生理曲度变直。L4/5椎间盘T2WI信号减低，向{side}后方突出约{size}mm，相应硬膜囊受压，"
                       "{side}侧神经根受压可能。L5/S1椎间盘轻度膨出。余椎间盘未见明显异常。",
                       "L4/5椎间盘突出（{side}后型）；L5/S1椎间盘膨出；腰椎退行性变。"),
    },
    "XR_CHEST": {
        NORMAL: ("胸廓对称，气管居中。双肺纹理清晰，双肺野内未见明显实变影。双肺门不大。心影大小形态未见明显异常。"
                 "双侧膈面光整，肋膈角锐利。",
                 "心肺膈未见明显异常。"),
        "markings": ("双肺纹理增多、增粗，双肺野内未见明显实变影。心影大小形态未见明显异常。双侧膈面光整，肋膈角锐利。",
                     "双肺纹理增多，请结合临床。"),
        "effusion": ("{side}侧肋膈角变钝，{side}下肺野见外高内低弧形致密影。心影大小形态未见明显异常。",
                     "{side}侧少量胸腔积液可能，建议CT进一步检查。"),
    },
    "XR_KNEE": {
        NORMAL: ("双膝关节诸骨骨质未见明显异常，关节间隙未见明显狭窄，关节面光整。周围软组织未见明显肿胀。",
                 "双膝关节未见明显异常。"),
        "degenerative": ("双膝关节诸骨骨质增生，髁间棘变尖，髌骨上下缘骨赘形成，{side}膝关节内侧间隙变窄。"
                         "周围软组织未见明显肿胀。",
                         "双膝关节退行性变，{side}膝为著。"),
    },
    "XR_LSPINE": {
        NORMAL: ("腰椎序列连续，生理曲度存在。各椎体形态及骨质未见明显异常，各椎间隙未见明显狭窄。附件未见异常。",
                 "腰椎未见明显异常。"),
        "degenerative": ("腰椎生理曲度变直，诸椎体边缘骨质增生，L4/5椎间隙变窄。各椎体未见明显压缩变形。",
                         "腰椎退行性变；L4/5椎间隙变窄，椎间盘病变可能，请结合MRI检查。"),
    },
}
_TEXTS["CT_CHEST_ABDOMEN"] = {
    NORMAL: (_TEXTS["CT_CHEST"][NORMAL][0] + _TEXTS["CT_ABDOMEN"][NORMAL][0], "胸部及上腹部CT平扫未见明显异常。"),
    "nodule_fatty": (_TEXTS["CT_CHEST"]["nodule"][0] + _TEXTS["CT_ABDOMEN"]["fatty_liver"][0],
                     _TEXTS["CT_CHEST"]["nodule"][1] + "脂肪肝。"),
}

CRITICAL = {"haemorrhage"}


def finding_keys(item_key: str) -> tuple[str, ...]:
    return tuple(_TEXTS[item_key])


def choose_finding(item_key: str, rng: random.Random, *, age: int, emergency: bool = False) -> str:
    """Normal in about half the reads; older patients have more findings; only emergencies bleed."""
    keys = [k for k in _TEXTS[item_key] if k != NORMAL and (emergency or k not in CRITICAL)]
    p_abnormal = 0.3 + min(age, 80) / 200
    if not keys or rng.random() > p_abnormal:
        return NORMAL
    return rng.choice(keys)


def write_report(item_key: str, finding: str, rng: random.Random, *, side: str | None = None,
                 size: int | None = None) -> ReportText:
    findings, impression = _TEXTS[item_key][finding]
    size = size or rng.randint(4, 14)
    fields = {
        "side": side or rng.choice(("左", "右")),
        "size": size,
        "size2": max(3, size - rng.randint(0, 3)),
        "hu": rng.randint(18, 38),
        "segment": rng.choice(("S2", "S4", "S6", "S7", "S8")),
    }
    return ReportText(findings.format(**fields), impression.format(**fields), finding, finding in CRITICAL)
