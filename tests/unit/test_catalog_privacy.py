"""No payload in the catalog can carry a plaintext name, phone number or ID number."""
from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from pipelines.crypto import Keyring
from schemas import REGISTRY

SENSITIVE_NAMES = {"name", "patient_name", "findings", "impression", "text"}
SENSITIVE_PARTS = ("phone", "mobile", "id_number", "id_card", "idcard", "address", "passport", "ip")
PLAINTEXTS = ["王小明", "Wang Xiaoming", "13800138000", "11010519491231002X", "合肥市蜀山区长江西路1号", "10.1.2.3"]


def _models() -> dict[str, type[BaseModel]]:
    """Every payload model, nested ones included, by a readable path."""
    found: dict[str, type[BaseModel]] = {}

    def visit(path: str, model: type[BaseModel]) -> None:
        if path in found:
            return
        found[path] = model
        for fname, field in model.model_fields.items():
            for arg in _flatten(field.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    visit(f"{path}.{fname}", arg)

    for etype in REGISTRY:
        visit(etype.name, etype.model)
    return found


def _flatten(annotation) -> list:
    args = typing.get_args(annotation)
    if not args:
        return [annotation]
    return [a for arg in args for a in _flatten(arg)]


def _adapter(field) -> TypeAdapter:
    """The field's full type: pydantic keeps top-level constraints in ``metadata``, apart from the annotation."""
    annotation = typing.Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return TypeAdapter(annotation)


def _is_sensitive(field_name: str) -> bool:
    words = field_name.split("_")
    return (field_name in SENSITIVE_NAMES or "ip" in words or field_name.endswith(("_token", "_text")) or any(
        part in field_name for part in SENSITIVE_PARTS if part != "ip"))


SENSITIVE_FIELDS = [
    (path, fname, field)
    for path, model in _models().items()
    for fname, field in model.model_fields.items()
    if _is_sensitive(fname)
]


def test_the_catalog_has_sensitive_fields_to_check():
    names = {f for _, f, _ in SENSITIVE_FIELDS}
    assert {"name", "phone", "id_number", "findings", "impression"} <= names, names


@pytest.mark.parametrize("path, fname, field", SENSITIVE_FIELDS, ids=[f"{p}.{f}" for p, f, _ in SENSITIVE_FIELDS])
def test_sensitive_fields_refuse_plaintext(path, fname, field):
    adapter = _adapter(field)
    for text in PLAINTEXTS:
        with pytest.raises(ValidationError):
            adapter.validate_python(text)


@pytest.mark.parametrize("path, fname, field", SENSITIVE_FIELDS, ids=[f"{p}.{f}" for p, f, _ in SENSITIVE_FIELDS])
def test_sensitive_fields_take_ciphertext_or_a_token(path, fname, field):
    keys = Keyring.generate()
    adapter = _adapter(field)
    encrypted, token = keys.encrypt("王小明", context=fname), keys.token(fname, "王小明")
    accepted = []
    for value in (encrypted, token):
        try:
            adapter.validate_python(value)
            accepted.append(value)
        except ValidationError:
            pass
    assert accepted, f"{path}.{fname} accepts neither ciphertext nor a token"


def test_no_field_name_looks_like_free_personal_text():
    """Catch new fields such as ``patient`` or ``contact`` typed as plain strings."""
    suspicious = {"patient", "contact", "cellphone", "tel", "telephone", "identity", "nickname", "full_name"}
    for path, model in _models().items():
        for fname in model.model_fields:
            assert fname not in suspicious, f"{path}.{fname}: use Encrypted/LookupToken and a clear name"
