"""National ID numbers (GB 11643-1999), phone numbers, and turning a person as a hospital sends it into a
:class:`~schemas.events.ProtectedPerson` plus a partition key, with nothing left in clear."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from pipelines.crypto import Keyring
from schemas.events import ProtectedPerson

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_FULLWIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789XX")


class InvalidIdNumber(ValueError):
    """The ID number is malformed; the message says exactly what is wrong, never the number itself."""


def check_digit(first17: str) -> str:
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS)) % 11]


def normalise_id_number(raw: str, *, today: date | None = None) -> str:
    """Validate and normalise a resident ID number to its 18-character form.

    Accepts full-width digits, surrounding spaces, a lower-case ``x``, and the old 15-digit form (converted
    to 18 digits with the century ``19`` and a computed check digit).
    """
    text = re.sub(r"[\s-]", "", raw.translate(_FULLWIDTH)).upper()
    if len(text) == 15:
        if not text.isdigit():
            raise InvalidIdNumber("15-digit ID number must be all digits")
        text = text[:6] + "19" + text[6:]
        text += check_digit(text)
    if len(text) != 18:
        raise InvalidIdNumber(f"ID number must have 18 characters (or 15 for the old form), got {len(text)}")
    if not text[:17].isdigit() or not (text[17].isdigit() or text[17] == "X"):
        raise InvalidIdNumber("ID number must be 17 digits followed by a digit or X")
    if text[0] == "0" or text[:2] in {"00"}:
        raise InvalidIdNumber("ID number region code is not valid")
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise InvalidIdNumber("ID number birth date (characters 7-14) is not a real date") from None
    if born.year < 1880 or born > (today or date.today()):
        raise InvalidIdNumber("ID number birth date (characters 7-14) is out of range")
    expected = check_digit(text[:17])
    if text[17] != expected:
        raise InvalidIdNumber("ID number check digit (GB 11643) does not match; the number was mistyped")
    return text


def birth_date_of(id_number: str) -> date:
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def sex_of(id_number: str) -> str:
    return "M" if int(id_number[16]) % 2 else "F"


class InvalidPhone(ValueError):
    pass


def normalise_phone(raw: str) -> str:
    digits = re.sub(r"[\s()+-]", "", raw.translate(_FULLWIDTH))
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not re.fullmatch(r"1[3-9]\d{9}", digits):
        raise InvalidPhone("mobile number must be 11 digits starting with 13-19 (optionally +86)")
    return digits


@dataclass(frozen=True)
class PlainPerson:
    """A person as a hospital sends it. Lives only in memory at the edge, never on the log."""

    name: str | None = None
    id_number: str | None = None
    phone: str | None = None
    sex: str | None = None
    birth_date: date | None = None
    hospital_patient_id: str | None = None


def person_key_of(person: PlainPerson, hospital: str, keys: Keyring) -> str:
    """The partition key: from the ID number when there is one, else scoped to the hospital's patient ID.

    Raises :class:`InvalidIdNumber` with a reason that names no personal data.
    """
    id_number = normalise_id_number(person.id_number) if person.id_number else None
    return _key(id_number, person, hospital, keys)


def _key(id_number: str | None, person: PlainPerson, hospital: str, keys: Keyring) -> str:
    if id_number:
        return keys.person_key(id_number)
    if person.hospital_patient_id:
        return keys.hospital_person_key(hospital, person.hospital_patient_id)
    raise InvalidIdNumber("a person needs an ID number or the hospital's patient ID")


def protect(person: PlainPerson, hospital: str, keys: Keyring) -> tuple[str, ProtectedPerson]:
    """Return the partition key and the protected record of a person.

    Raises :class:`InvalidIdNumber` or :class:`InvalidPhone` with a reason that names no personal data.
    """
    id_number = normalise_id_number(person.id_number) if person.id_number else None
    phone = normalise_phone(person.phone) if person.phone else None
    key = _key(id_number, person, hospital, keys)
    sex = person.sex or (sex_of(id_number) if id_number else "U")
    birth = person.birth_date or (birth_date_of(id_number) if id_number else None)
    protected = ProtectedPerson(
        name=keys.encrypt(person.name, context="name") if person.name else None,
        id_number=keys.encrypt(id_number, context="id_number") if id_number else None,
        id_token=keys.token("id", id_number) if id_number else None,
        phone=keys.encrypt(phone, context="phone") if phone else None,
        phone_token=keys.token("phone", phone) if phone else None,
        sex=sex if sex in ("M", "F", "O", "U") else "U",
        birth_year=birth.year if birth else None,
        hospital_patient_id=person.hospital_patient_id,
    )
    return key, protected
