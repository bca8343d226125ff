"""Red-flag rules over what the patient writes. They run before anything else and their answer always wins."""
from __future__ import annotations

import re
from dataclasses import dataclass

EMERGENCY = "请立即拨打120，或马上到最近医院的急诊科就诊，不要等待，也不要自己开车。"


@dataclass(frozen=True)
class RedFlag:
    name: str
    label: str  # what the patient is told we noticed
    advice: str
    negatable: bool = True  # "没有胸痛" does not raise a flag; thoughts of self-harm always do


@dataclass(frozen=True)
class Rule:
    flag: RedFlag
    pattern: re.Pattern


def _rule(name, label, patterns, advice=EMERGENCY, negatable=True) -> Rule:
    return Rule(RedFlag(name, label, advice, negatable), re.compile("|".join(patterns)))


# Intensifiers that may stand between a body part and the pain word: "胸口很痛", "心脏特别疼".
_INTENSE = "(很|好|非常|特别|十分|极其|剧烈|一阵阵|阵阵|持续|突然|有点|有些)"

RULES: tuple[Rule, ...] = (
    _rule("self_harm", "伤害自己的想法", [
        r"想死", r"不想活", r"活着没意思", r"活不下去", r"自杀", r"轻生", r"结束(自己的)?生命", r"伤害自己",
        r"割腕", r"跳楼", r"了结自己", r"一了百了"],
        advice="您现在的安全最重要。请立即拨打120或110，或马上到最近医院的急诊科；请告诉身边信任的人陪着您，"
               "也可以拨打当地的心理援助热线。您不是一个人。", negatable=False),
    _rule("chest_pain", "胸痛", [
        rf"胸[口部前]?{_INTENSE}?[痛疼]", rf"心[口脏]{_INTENSE}?[痛疼]", r"胸[口部]?.{0,4}(压榨|紧缩|压着|撕裂)", r"心绞痛",
        r"胸闷.{0,6}(出汗|冷汗|大汗)", r"胸[口部]?.{0,2}剧[痛疼]", r"背部?撕裂样[痛疼]"]),
    _rule("stroke", "中风（脑卒中）的表现", [
        r"口角歪斜", r"嘴[巴角]?歪", r"脸歪", r"面瘫",
        (r"(一侧|半边|半身|单侧|左侧|右侧|左边|右边)(的)?(身体|肢体|手|脚|胳膊|腿|脸)?"
         r".{0,4}(无力|麻木|不能动|动不了|没劲)"),
        r"半身不遂", r"说话不清", r"言语不清", r"口齿不清", r"说不出话",
        r"突然.{0,4}(看不清|看不见|失明|眼前发黑)", r"突然.{0,4}(剧烈)?头[痛疼]", r"剧烈头[痛疼]", r"一辈子最[痛疼]的头[痛疼]",
        r"头[部]?(非常|特别|极其|剧烈|痛得要命|疼得要命)[痛疼]?", r"头[痛疼]得(厉害|受不了|要命)"]),
    _rule("breathless", "呼吸困难", [
        r"喘不[上过]气", r"呼吸困难", r"透不过气", r"上不来气", r"憋得慌", r"憋气", r"气促", r"嘴唇发紫", r"口唇发绀",
        r"呼吸急促", r"喘得厉害"]),
    _rule("bleeding", "大量出血", [
        r"大出血", r"出血不止", r"血止不住", r"流血不止", r"大量出血", r"吐血", r"呕血", r"咯血", r"咳血", r"黑便",
        r"便血.{0,4}(很多|大量|不止)", r"阴道.{0,4}大量出血"]),
    _rule("cauda_equina", "马尾神经受压的表现", [
        r"大小便失禁", r"大便失禁", r"尿失禁", r"排不出尿", r"尿不出[来尿]?", r"鞍区麻木", r"会阴部?.{0,3}麻",
        r"肛门.{0,4}麻", r"屁股.{0,4}麻木", r"(双腿|两条腿|两腿).{0,4}(无力|没劲|麻木|动不了)"]),
    _rule("collapse", "意识或抽搐的问题", [
        r"昏迷", r"意识不清", r"叫不醒", r"抽搐", r"晕倒", r"晕厥", r"昏过去"]),
)
_NEGATION = re.compile(r"(没有|没|无|并无|不再|从未|未曾)$")


def check(message: str) -> RedFlag | None:
    """The first red flag raised by the patient's words, or None."""
    for rule in RULES:
        for match in rule.pattern.finditer(message):
            before = message[max(0, match.start() - 3):match.start()]
            if rule.flag.negatable and _NEGATION.search(before):
                continue
            return rule.flag
    return None


def answer(flag: RedFlag) -> str:
    return f"您提到的情况可能是「{flag.label}」，这是需要马上处理的危险信号。{flag.advice}"
