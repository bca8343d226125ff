"""Multi-turn conversation about a report: red flags first, then the model (grounded, filtered), else a fallback.

`Conversation` is a pure value: each turn is one fact that can later be stored as an event.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from interpret import redflags
from interpret.chat_client import ChatError
from interpret.glossary import Glossary
from interpret.marking import Marker, Span, default_marker
from interpret.sections import HISTORY

DISCLAIMER = "以上内容仅帮助您理解报告，不能代替医生的诊断和治疗意见；如有不适或疑问，请及时就医。"
LEVEL_RANK = {"urgent": 3, "see_doctor": 2, "follow_up": 1, "normal_variant": 0}
LEVEL_ADVICE = {
    "normal_variant": "通常属于常见的良性表现或正常变异，一般不需要特殊处理",
    "follow_up": "一般按医生建议定期复查即可",
    "see_doctor": "建议近期带上报告到{department}就诊",
    "urgent": "建议尽快就医，必要时去急诊",
}
# What the model must not say: a diagnosis made for the patient, or how much of a drug to take.
FORBIDDEN = (
    re.compile(r"(您|你)(已经|就是|肯定|确定)?(患有|得了|患了|确诊)"),
    re.compile(r"(确诊|诊断)(为|是)"),
    re.compile(r"\d+(\.\d+)?\s*(mg|毫克|μg|ug|微克|g|克|ml|毫升|片|粒|袋|支|单位|IU)(?![a-zA-Z])", re.IGNORECASE),
    re.compile(r"(每日|每天|一天|每晚|每次|一次)\s*[一二三四1-4]\s*(次|片|粒|袋)"),
    re.compile(r"(剂量|用量)(为|是)"),
)
LIFESTYLE = {
    "脂肪肝": "控制体重（每月减重1-2公斤较合适），少吃油炸、甜食和含糖饮料，戒酒，每周至少150分钟中等强度运动。",
    "胆囊结石": "三餐规律，不要长时间空腹，少吃油腻和油炸食物；出现右上腹剧痛或发热要及时就医。",
    "胆囊息肉": "三餐规律、少油饮食，按医生建议定期复查超声。",
    "肾结石": "每天多喝水（尿量保持在2升左右，心肾功能不全者遵医嘱），少喝浓茶，适当限盐、限高嘌呤食物。",
    "主动脉硬化": "低盐低脂饮食，戒烟限酒，控制血压、血脂、血糖，坚持适度运动。",
    "颈动脉斑块": "低盐低脂饮食，戒烟限酒，控制血压、血脂、血糖，坚持适度运动。",
    "腔隙性脑梗死": "低盐低脂饮食，戒烟限酒，控制血压、血糖、血脂，规律作息。",
    "椎间盘突出": "避免久坐和弯腰搬重物，睡较硬的床垫，在康复医生指导下锻炼腰背肌。",
    "骨质疏松": "多吃奶制品、豆制品，适当晒太阳，坚持负重运动，注意防跌倒。",
    "肺气肿": "一定要戒烟，避免二手烟和粉尘，按医生建议做呼吸锻炼，注意预防感冒。",
    "肺结节": "戒烟，避免二手烟和油烟，按医生建议的时间复查CT，不必过度焦虑。",
    "磨玻璃结节": "戒烟，避免二手烟和油烟，按医生建议的时间复查CT，不必过度焦虑。",
    "甲状腺结节": "一般饮食不需要特殊忌口，按医生建议定期复查超声。",
}
GENERAL_LIFESTYLE = "均衡饮食、少油少盐、不吸烟、少饮酒、规律作息和适度运动，对大多数情况都有好处。"


@dataclass(frozen=True)
class Turn:
    role: Literal["patient", "assistant"]
    text: str
    source: Literal["patient", "red_flag", "model", "fallback"] = "patient"
    red_flag: str = ""  # RedFlag.name when source is red_flag
    fallback_reason: str = ""  # no_model, timeout, http_500, malformed, empty, forbidden, transport


@dataclass(frozen=True)
class Conversation:
    report_text: str
    glossary_version: str
    spans: tuple[Span, ...] = ()
    turns: tuple[Turn, ...] = field(default_factory=tuple)

    def with_turn(self, turn: Turn) -> Conversation:
        return replace(self, turns=(*self.turns, turn))


class ChatModel(Protocol):
    def complete(self, messages: list[dict]) -> str: ...


def start(report_text: str, marker: Marker | None = None) -> Conversation:
    marker = marker or default_marker()
    return Conversation(report_text, marker.glossary.version, tuple(marker.mark(report_text)))


def respond(conversation: Conversation, message: str, model: ChatModel | None = None,
            marker: Marker | None = None) -> tuple[Conversation, Turn]:
    """Answer the patient's message; returns the conversation with both turns added, and the answer."""
    conversation = conversation.with_turn(Turn("patient", message))
    flag = redflags.check(message)
    if flag is not None:
        reply = Turn("assistant", redflags.answer(flag), source="red_flag", red_flag=flag.name)
        return conversation.with_turn(reply), reply
    marker = marker or default_marker()
    reason = "no_model"
    if model is not None:
        try:
            text = model.complete(grounded_messages(conversation, marker.glossary))
            reason = "forbidden" if forbidden(text) else ""
        except ChatError as error:
            reason = error.reason
        if not reason:
            reply = Turn("assistant", f"{text}\n\n{DISCLAIMER}", source="model")
            return conversation.with_turn(reply), reply
    reply = Turn("assistant", f"{fallback_answer(conversation, message, marker)}\n\n{DISCLAIMER}",
                 source="fallback", fallback_reason=reason)
    return conversation.with_turn(reply), reply


def forbidden(text: str) -> bool:
    return any(pattern.search(text) for pattern in FORBIDDEN)


def _status(span: Span) -> str:
    if span.negated:
        return "报告写明未见/已排除"
    return "报告认为可能存在，尚不确定" if span.uncertain else "报告中提到"


def grounded_messages(conversation: Conversation, glossary: Glossary, history: int = 8) -> list[dict]:
    """System prompt with the report and the glossary entries of its marked terms, then the recent turns."""
    seen, notes = set(), []
    for span in conversation.spans:
        if span.canonical in seen:
            continue
        seen.add(span.canonical)
        notes.append(f"- {span.term}（{_status(span)}；就诊科室：{span.department}）：{span.explanation}")
    system = (
        "你是医院影像科的患者沟通助手，用通俗、温和的简体中文回答患者关于自己检查报告的问题。规则：\n"
        "1. 只根据下面的报告原文和术语解释回答，不知道就说不知道，建议咨询医生；\n"
        "2. 不做诊断，不说“您患有/确诊为”之类的话；报告写“未见”“排除”的内容要明确告诉患者没有发现，避免引起恐慌；\n"
        "3. 不给任何药物名称的剂量、用法用量；\n"
        "4. 可以说明应挂哪个科室、生活方式和饮食的一般建议；\n"
        "5. 如患者描述胸痛、中风表现、呼吸困难、大出血、大小便失禁或伤害自己的想法，告诉其立即拨打120或去急诊。\n\n"
        f"【报告原文】\n{conversation.report_text}\n\n【报告中的术语（术语表版本 {glossary.version}）】\n"
        + ("\n".join(notes) or "（未识别到术语）")
    )
    messages = [{"role": "system", "content": system}]
    for turn in conversation.turns[-history:]:
        messages.append({"role": "user" if turn.role == "patient" else "assistant", "content": turn.text})
    return messages


def _present(spans) -> list[Span]:
    """Findings the report affirms or suspects, most serious first, one per canonical term.
    Terms in the clinical history are the reason for the exam, not findings."""
    best: dict[str, Span] = {}
    for span in spans:
        if not span.negated and span.section != HISTORY and span.canonical not in best:
            best[span.canonical] = span
    return sorted(best.values(), key=lambda s: -LEVEL_RANK[s.level])


def _advice(span: Span) -> str:
    """Where to go, for findings a doctor should see; milder entries already say what to do."""
    if span.level in ("see_doctor", "urgent"):
        return LEVEL_ADVICE[span.level].format(department=span.department) + "。"
    return ""


def _explain(span: Span) -> str:
    if span.negated:
        return f"「{span.term}」：报告写的是没有发现（未见/已排除），这一项不用担心。"
    hedge = "（报告只是怀疑，尚未确定）" if span.uncertain else ""
    return f"「{span.term}」{hedge}：{span.explanation}{_advice(span)}"


def fallback_answer(conversation: Conversation, message: str, marker: Marker) -> str:
    """An answer from the glossary, department routing and templates (no model involved)."""
    present = _present(conversation.spans)
    asked = {s.canonical for s in marker.mark(message)}
    if asked:
        in_report: dict[str, Span] = {}
        for span in conversation.spans:  # an affirmed mention outweighs a negated one
            if span.canonical not in in_report or in_report[span.canonical].negated:
                in_report[span.canonical] = span
        parts = []
        for canonical in sorted(asked):
            span = in_report.get(canonical)
            related = [s for s in present if canonical in s.canonical and s.canonical != canonical]
            if span is not None:
                parts.append(_explain(span))
                parts.extend(_explain(s) for s in related if span.negated)
            elif related:  # "结节" asked, "肺结节" reported
                parts.extend(_explain(s) for s in related)
            else:
                entry = marker.glossary.by_term(canonical)
                parts.append(f"「{canonical}」：{entry.explanation}（您的报告中没有提到这一项。）")
        return "\n".join(parts)
    if re.search(r"科|挂号|医院|就诊|看病|找谁|哪里看", message):
        if not present:
            return "报告中没有需要专科处理的发现。如仍有不适，可以先到全科医学科或开单医生处咨询。"
        departments = []
        for span in present:
            if span.level != "normal_variant" and span.department not in departments:
                departments.append(span.department)
        if not departments:
            return "报告中的发现多为良性或常见变化，一般不需要专门挂号；有不适时可到全科医学科咨询。"
        lead = present[0]
        urgency = "请尽快就医，必要时去急诊。" if lead.level == "urgent" else "可以带上报告挂号就诊。"
        return f"根据报告内容，建议挂「{'」或「'.join(departments[:3])}」。{urgency}也可以先找开检查单的医生看报告。"
    if re.search(r"吃|饮食|喝|忌口|运动|锻炼|生活|注意", message):
        tips = [f"{s.canonical}：{LIFESTYLE[s.canonical]}" for s in present if s.canonical in LIFESTYLE]
        return "\n".join(tips[:3] + [GENERAL_LIFESTYLE])
    return summary(conversation.spans)


def summary(spans) -> str:
    present = _present(spans)
    absent = sorted({s.term for s in spans if s.negated})
    lines = []
    if any(s.level == "urgent" for s in present):
        lines.append("报告中有需要尽快处理的发现，请尽快就医。")
    if present:
        lines.append("报告中提到的主要发现：")
        lines.extend(_explain(s) for s in present[:6])
    else:
        lines.append("报告中没有识别到需要特别关注的异常发现。")
    if absent:
        lines.append(f"报告明确写了没有发现：{'、'.join(absent[:8])}。")
    return "\n".join(lines)
