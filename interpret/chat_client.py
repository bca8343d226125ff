"""A client for any OpenAI-compatible chat API (the hospital runs its own model)."""
from __future__ import annotations

from dataclasses import dataclass

import httpx


class ChatError(Exception):
    """The model gave no usable answer; `reason` says why (timeout, http_500, malformed, empty, transport)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class ChatConfig:
    base_url: str = ""  # e.g. http://10.0.0.5:8000/v1
    model: str = ""
    api_key: str = ""
    timeout_s: float = 20.0
    max_tokens: int = 800
    temperature: float = 0.3

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)

    @classmethod
    def from_settings(cls, settings) -> ChatConfig:
        """Read chat_base_url, chat_model, chat_api_key, chat_timeout_s from the settings object, if it has them."""
        return cls(
            base_url=getattr(settings, "chat_base_url", "") or "",
            model=getattr(settings, "chat_model", "") or "",
            api_key=getattr(settings, "chat_api_key", "") or "",
            timeout_s=float(getattr(settings, "chat_timeout_s", 20.0) or 20.0),
        )


class ChatClient:
    def __init__(self, config: ChatConfig, transport: httpx.BaseTransport | None = None):
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.Client(
            base_url=config.base_url.rstrip("/"), headers=headers, timeout=config.timeout_s, transport=transport
        )

    def complete(self, messages: list[dict]) -> str:
        """The assistant's answer to `messages`; raises ChatError when there is none to use."""
        body = {"model": self.config.model, "messages": messages, "temperature": self.config.temperature,
                "max_tokens": self.config.max_tokens, "stream": False}
        try:
            response = self._http.post("/chat/completions", json=body)
        except httpx.TimeoutException as error:
            raise ChatError("timeout", str(error)) from None
        except httpx.HTTPError as error:
            raise ChatError("transport", error.__class__.__name__) from None
        if response.status_code >= 400:
            raise ChatError(f"http_{response.status_code}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ChatError("malformed") from None
        if not isinstance(content, str) or not content.strip():
            raise ChatError("empty")
        return content.strip()

    def close(self) -> None:
        self._http.close()
