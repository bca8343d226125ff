"""interpret: helps patients read their imaging reports (see docs/architecture.md).

glossary (data/glossary.jsonl) -> marking (terms, negation, uncertainty, sections) -> dialogue (red flags first,
then an OpenAI-compatible model via chat_client, else a glossary fallback); ocr reads photographed reports.
"""
