"""Dialogue against a local OpenAI-compatible stub: every failure falls back, red flags always win."""
from __future__ import annotations

import pytest

from interpret import dialogue, redflags
from interpret.chat_client import ChatClient, ChatConfig, ChatError
from tests.interpret.chat_stub import FORBIDDEN_ANSWER, MODES, OK_ANSWER, ChatStub

REPORT = ("检查所见：\n右肺上叶见一磨玻璃结节，大小约6mm。未见明显骨折，双侧未见胸腔积液。\n"
          "诊断意见：\n右肺上叶磨玻璃结节，建议复查。")
RED_FLAG_MESSAGES = {
    "chest_pain": "我现在胸口疼得厉害，还出冷汗",
    "stroke": "我爸突然嘴歪了，说话不清",
    "breathless": "我喘不上气",
    "bleeding": "我今天咳血了好几口",
    "cauda_equina": "腰痛以后大小便失禁了",
    "self_harm": "看完报告我不想活了",
}


@pytest.fixture(scope="module")
def stub():
    with ChatStub(slow_seconds=2.0) as server:
        yield server


@pytest.fixture
def client(stub):
    chat = ChatClient(ChatConfig(base_url=stub.base_url, model="local-model", api_key="k-test", timeout_s=0.5))
    yield chat
    chat.close()


def test_ok_answer_is_grounded_and_carries_the_disclaimer(stub, client):
    stub.mode, stub.requests[:] = "ok", []
    conversation, reply = dialogue.respond(dialogue.start(REPORT), "磨玻璃结节是什么？", client)
    assert reply.source == "model" and reply.text.startswith(OK_ANSWER) and dialogue.DISCLAIMER in reply.text
    request = stub.requests[-1]
    assert request["auth"] == "Bearer k-test" and request["body"]["model"] == "local-model"
    system = request["body"]["messages"][0]["content"]
    assert REPORT in system and "CT上像毛玻璃一样" in system and "胸腔积液（报告写明未见/已排除" in system
    assert request["body"]["messages"][-1] == {"role": "user", "content": "磨玻璃结节是什么？"}
    assert [t.role for t in conversation.turns] == ["patient", "assistant"]


@pytest.mark.parametrize("mode,reason", [("500", "http_500"), ("timeout", "timeout"), ("malformed", "malformed"),
                                         ("empty", "empty"), ("forbidden", "forbidden")])
def test_every_failure_falls_back_to_the_glossary(stub, client, mode, reason):
    stub.mode = mode
    _, reply = dialogue.respond(dialogue.start(REPORT), "磨玻璃结节是什么？", client)
    assert (reply.source, reply.fallback_reason) == ("fallback", reason)
    assert "CT上像毛玻璃一样" in reply.text and dialogue.DISCLAIMER in reply.text
    assert FORBIDDEN_ANSWER not in reply.text and OK_ANSWER not in reply.text


def test_no_model_configured_falls_back():
    conversation = dialogue.start(REPORT)
    _, reply = dialogue.respond(conversation, "这份报告是什么意思？")
    assert (reply.source, reply.fallback_reason) == ("fallback", "no_model")
    assert "磨玻璃结节" in reply.text and "没有发现：" in reply.text and "骨折" in reply.text
    _, reply = dialogue.respond(conversation, "我应该挂什么科？")
    assert "呼吸内科" in reply.text
    _, reply = dialogue.respond(conversation, "骨折严重吗")
    assert "没有发现" in reply.text


@pytest.mark.parametrize("mode", MODES)
def test_red_flags_win_over_the_model_in_every_mode(stub, client, mode):
    stub.mode = mode
    for name, message in RED_FLAG_MESSAGES.items():
        before = len(stub.requests)
        _, reply = dialogue.respond(dialogue.start(REPORT), message, client)
        assert (reply.source, reply.red_flag) == ("red_flag", name), message
        assert "120" in reply.text
        assert len(stub.requests) == before, "the model must not be asked when a red flag is raised"


def test_history_terms_are_not_findings_and_affirmed_mentions_win():
    conversation = dialogue.start("临床诊断：肺癌术后复查\n检查所见：未见结节。\n诊断意见：右肺结节。")
    _, reply = dialogue.respond(conversation, "总结一下")
    assert "肺癌" not in reply.text.split("报告明确写了没有发现")[0] and "肺结节" in reply.text
    _, reply = dialogue.respond(conversation, "结节要紧吗")
    assert "「肺结节」：肺里一个小圆形的病灶" in reply.text


def test_red_flag_rules():
    assert redflags.check("我没有胸痛，只是想问问结节") is None
    assert redflags.check("没有想死，就是有点担心") is not None  # self-harm words always raise the flag
    assert redflags.check("左边胳膊突然没劲") .name == "stroke"
    assert redflags.check("结节要不要紧") is None


def test_output_filter():
    assert dialogue.forbidden("您患有肺癌")
    assert dialogue.forbidden("每次吃2片")
    assert dialogue.forbidden("布洛芬 400 mg")
    assert not dialogue.forbidden("结节大小约6mm，建议12个月复查")  # sizes are not doses


def test_client_errors_name_their_reason(stub, client):
    stub.mode = "malformed"
    with pytest.raises(ChatError) as error:
        client.complete([{"role": "user", "content": "hi"}])
    assert error.value.reason == "malformed"
    unreachable = ChatClient(ChatConfig(base_url="http://127.0.0.1:9/v1", model="m", timeout_s=0.5))
    with pytest.raises(ChatError) as error:
        unreachable.complete([{"role": "user", "content": "hi"}])
    assert error.value.reason in ("transport", "timeout")
    assert not ChatConfig().configured and ChatConfig.from_settings(object()).timeout_s == 20.0


@pytest.mark.parametrize("message,flag", [
    ("胸口很痛", "chest_pain"), ("胸口好痛", "chest_pain"), ("心脏很疼", "chest_pain"),
    ("头非常痛", "stroke"), ("我头痛得厉害", "stroke"),
    ("胸口不痛", None), ("肚子有点痛", None), ("没有胸痛", None),
])
def test_red_flags_see_through_intensifiers(message, flag):
    found = redflags.check(message)
    assert (found.name if found else None) == flag
