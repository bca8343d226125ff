"""Resident ID numbers (GB 11643-1999), phone numbers, and protecting a person at the edge."""
from __future__ import annotations

from datetime import date

import pytest

from pipelines.crypto import Keyring
from pipelines.identity import (
    InvalidIdNumber,
    InvalidPhone,
    PlainPerson,
    birth_date_of,
    normalise_id_number,
    normalise_phone,
    protect,
    sex_of,
)


def iso7064_check(first17: str) -> str:
    """MOD 11-2 computed from its definition (weights 2^(17-i) mod 11), independent of the module's table."""
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


BODIES = ["34010419850612123", "34010219900101002", "11010519491231002", "34122519771109451", "34010420000229007"]
VALID = [b + iso7064_check(b) for b in BODIES]
TODAY = date(2026, 11, 28)


def test_the_computed_numbers_include_an_x_check_digit():
    assert any(v.endswith("X") for v in VALID)  # 11010519491231002X, the textbook example
    assert "11010519491231002X" in VALID


@pytest.mark.parametrize("number", VALID)
def test_valid_numbers_normalise_to_themselves(number):
    assert normalise_id_number(number, today=TODAY) == number


@pytest.mark.parametrize("number", VALID)
def test_every_other_check_digit_is_refused(number):
    for wrong in "0123456789X":
        if wrong == number[17]:
            continue
        with pytest.raises(InvalidIdNumber, match="check digit") as err:
            normalise_id_number(number[:17] + wrong, today=TODAY)
        assert number[:17] not in str(err.value)


def test_full_width_digits_and_spaces_are_accepted():
    number = "11010519491231002X"
    full = "".join(chr(ord(c) + 0xFEE0) for c in number)  # full-width digits and Ｘ
    assert normalise_id_number(full, today=TODAY) == number
    assert normalise_id_number("　" + full[:6] + " " + full[6:] + " ", today=TODAY) == number
    assert normalise_id_number(number[:17] + "ｘ", today=TODAY) == number


def test_lower_case_x_is_accepted():
    assert normalise_id_number("11010519491231002x", today=TODAY) == "11010519491231002X"


def test_fifteen_digit_form_is_converted():
    old = "340104850612123"  # 15-digit: region, YYMMDD, sequence
    new = normalise_id_number(old, today=TODAY)
    assert new[:17] == "34010419850612123"
    assert new[17] == iso7064_check(new[:17])
    assert birth_date_of(new) == date(1985, 6, 12)


@pytest.mark.parametrize(
    "body, match",
    [
        ("34010419850230123", "not a real date"),  # 30 February
        ("34010419851301123", "not a real date"),  # month 13
        ("34010418700101123", "out of range"),  # before 1880
        ("34010420300101123", "out of range"),  # in the future
    ],
)
def test_bad_birth_dates_are_refused(body, match):
    with pytest.raises(InvalidIdNumber, match=match) as err:
        normalise_id_number(body + iso7064_check(body), today=TODAY)
    assert body not in str(err.value)


@pytest.mark.parametrize(
    "raw, match",
    [
        ("3401041985061212", "18 characters"),
        ("3401041985061212345", "18 characters"),
        ("34010419850612X123", "17 digits"),
        ("34010A850612123", "15-digit"),
        ("", "18 characters"),
    ],
)
def test_malformed_numbers_are_refused_with_a_reason(raw, match):
    with pytest.raises(InvalidIdNumber, match=match) as err:
        normalise_id_number(raw, today=TODAY)
    if raw:
        assert raw not in str(err.value)


def test_region_code_starting_with_zero_is_refused():
    body = "04010419850612123"
    with pytest.raises(InvalidIdNumber, match="region"):
        normalise_id_number(body + iso7064_check(body), today=TODAY)


def test_no_error_message_contains_any_part_of_the_number():
    samples = [VALID[0][:17] + ("0" if VALID[0][17] != "0" else "1"), "34010419850230123X", "3401041985061"]
    for raw in samples:
        with pytest.raises(InvalidIdNumber) as err:
            normalise_id_number(raw, today=TODAY)
        message = str(err.value)
        assert not any(raw[i : i + 6] in message for i in range(len(raw) - 5)), message


def test_sex_and_birth_date_come_from_the_number():
    assert sex_of("11010519491231002X") == "F"  # 17th digit 2: even
    assert sex_of(VALID[3]) == "M"  # 17th digit 1
    assert birth_date_of(VALID[4]) == date(2000, 2, 29)


@pytest.mark.parametrize(
    "raw", ["13800138000", "138 0013 8000", "+86 138-0013-8000", "0086 13800138000", "８６１３８００１３８０００",
            "(138)00138000"]
)
def test_phone_forms_normalise(raw):
    assert normalise_phone(raw) == "13800138000"


@pytest.mark.parametrize("raw", ["12800138000", "1380013800", "138001380001", "0551-12345678", "abc"])
def test_bad_phones_are_refused_without_echo(raw):
    with pytest.raises(InvalidPhone) as err:
        normalise_phone(raw)
    assert raw not in str(err.value)


def test_protect_leaves_nothing_in_clear():
    keys = Keyring.generate()
    number = VALID[0]
    person = PlainPerson(name="王小明", id_number=number.lower(), phone="+86 13800138000", hospital_patient_id="MRN1")
    key, protected = protect(person, "AH-HF-001", keys)
    assert key == keys.person_key(number)
    dumped = protected.model_dump_json()
    for secret in ("王小明", number, "13800138000", number[6:14]):
        assert secret not in dumped
    assert keys.decrypt(protected.name, context="name") == "王小明"
    assert keys.decrypt(protected.id_number, context="id_number") == number
    assert keys.decrypt(protected.phone, context="phone") == "13800138000"
    assert protected.id_token == keys.token("id", number)
    assert protected.phone_token == keys.token("phone", "13800138000")
    assert (protected.sex, protected.birth_year) == ("M", 1985)


def test_protect_without_id_number_uses_a_hospital_scoped_key():
    keys = Keyring.generate()
    key, protected = protect(PlainPerson(hospital_patient_id="MRN7", sex="F"), "AH-HF-001", keys)
    assert key == keys.hospital_person_key("AH-HF-001", "MRN7")
    assert protected.id_number is None and protected.sex == "F"


def test_protect_refuses_a_person_with_no_identifier():
    with pytest.raises(InvalidIdNumber, match="ID number or the hospital's patient ID"):
        protect(PlainPerson(name="x"), "AH-HF-001", Keyring.generate())


def test_protect_refuses_a_mistyped_number_without_echo():
    bad = VALID[1][:17] + ("1" if VALID[1][17] != "1" else "2")
    with pytest.raises(InvalidIdNumber) as err:
        protect(PlainPerson(id_number=bad), "AH-HF-001", Keyring.generate())
    assert bad[:17] not in str(err.value)
