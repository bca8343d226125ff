"""Field encryption, key rotation, crypto-shredding, look-up tokens and person keys."""
from __future__ import annotations

import json

import pytest

from pipelines.crypto import CryptoError, Keyring
from schemas.types import Encrypted, LookupToken, PersonKey
from pydantic import TypeAdapter


@pytest.fixture
def ring() -> Keyring:
    return Keyring.generate()


def test_round_trip_and_the_value_fits_the_encrypted_field_type(ring):
    value = ring.encrypt("张三", context="name")
    assert value.startswith("enc1.k1.")
    assert "张三" not in value
    TypeAdapter(Encrypted).validate_python(value)
    assert ring.decrypt(value, context="name") == "张三"


def test_same_plaintext_encrypts_differently_each_time(ring):
    assert ring.encrypt("13800138000", context="phone") != ring.encrypt("13800138000", context="phone")


def test_wrong_context_fails(ring):
    value = ring.encrypt("张三", context="name")
    with pytest.raises(CryptoError, match="does not authenticate"):
        ring.decrypt(value, context="phone")


def test_another_ring_cannot_read(ring):
    value = ring.encrypt("张三", context="name")
    with pytest.raises(CryptoError, match="does not authenticate"):
        Keyring.generate().decrypt(value, context="name")


@pytest.mark.parametrize("bad", ["", "plain text", "enc2.k1.AAAA", "enc1.k1.!!!", "enc1.k1.AAAA"])
def test_malformed_values_raise_crypto_error(ring, bad):
    with pytest.raises(CryptoError):
        ring.decrypt(bad)


def test_tampered_value_fails(ring):
    value = ring.encrypt("张三", context="name")
    flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    with pytest.raises(CryptoError):
        ring.decrypt(flipped, context="name")


def test_rotation_keeps_old_values_readable(ring):
    old = ring.encrypt("张三", context="name")
    kid = ring.rotate()
    assert kid != "k1" and ring.active == kid
    new = ring.encrypt("李四", context="name")
    assert new.startswith(f"enc1.{kid}.")
    assert ring.decrypt(old, context="name") == "张三"
    assert ring.decrypt(new, context="name") == "李四"
    again = Keyring.from_json(ring.to_json())
    assert again.decrypt(old, context="name") == "张三" and again.decrypt(new, context="name") == "李四"


def test_shredding_a_key_makes_its_values_unreadable_with_a_clear_error(ring):
    old = ring.encrypt("张三", context="name")
    ring.rotate()
    new = ring.encrypt("李四", context="name")
    ring.shred("k1")
    with pytest.raises(CryptoError, match="'k1' was shredded"):
        ring.decrypt(old, context="name")
    assert ring.decrypt(new, context="name") == "李四"
    reloaded = Keyring.from_json(ring.to_json())
    assert "k1" not in json.loads(ring.to_json())["data_keys"]
    with pytest.raises(CryptoError, match="shredded"):
        reloaded.decrypt(old, context="name")


def test_the_active_key_cannot_be_shredded(ring):
    with pytest.raises(CryptoError, match="active"):
        ring.shred("k1")


def test_shredded_key_ids_are_never_reused(ring):
    ring.rotate()
    ring.rotate()  # k1, k2, k3 active
    ring.shred("k1")
    ring.shred("k2")
    kid = ring.rotate()
    assert kid not in {"k1", "k2", "k3"}
    assert Keyring.from_json(ring.to_json()).rotate() not in {"k1", "k2", "k3", kid}


def test_tokens_are_deterministic_and_kind_separated(ring):
    t = ring.token("phone", "13800138000")
    TypeAdapter(LookupToken).validate_python(t)
    assert t == ring.token("phone", "13800138000")
    assert t == Keyring.from_json(ring.to_json()).token("phone", "13800138000")
    assert t != ring.token("id", "13800138000")
    assert t != ring.token("phone", "13800138001")
    assert "13800138000" not in t


def test_tokens_do_not_change_when_data_keys_rotate(ring):
    t = ring.token("id", "11010519491231002X")
    ring.rotate()
    assert ring.token("id", "11010519491231002X") == t


def test_person_key_is_stable_across_rotation_and_reload(ring):
    pk = ring.person_key("11010519491231002X")
    TypeAdapter(PersonKey).validate_python(pk)
    ring.rotate()
    assert ring.person_key("11010519491231002X") == pk
    assert Keyring.from_json(ring.to_json()).person_key("11010519491231002X") == pk
    assert Keyring.generate().person_key("11010519491231002X") != pk
    assert ring.person_key("110105194912310029") != pk


def test_hospital_person_key_fits_the_type_and_is_scoped(ring):
    hk = ring.hospital_person_key("AH-HF-001", "MRN-9")
    TypeAdapter(PersonKey).validate_python(hk)
    assert hk.startswith("h.AH-HF-001.")
    assert hk == ring.hospital_person_key("AH-HF-001", "MRN-9")
    assert hk.split(".")[2] != ring.hospital_person_key("AH-WH-002", "MRN-9").split(".")[2]


def test_key_file_is_created_private_and_reloaded(tmp_path):
    path = tmp_path / "keys" / "keys.json"
    ring = Keyring.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    value = ring.encrypt("x", context="c")
    assert Keyring.load_or_create(path).decrypt(value, context="c") == "x"


def test_keys_must_be_32_bytes_and_active_must_exist():
    with pytest.raises(CryptoError, match="32 bytes"):
        Keyring(data_keys={"k1": b"short"}, active="k1", partition_secret=b"s" * 32)
    with pytest.raises(CryptoError, match="not in the key ring"):
        Keyring(data_keys={"k1": b"k" * 32}, active="k9", partition_secret=b"s" * 32)
