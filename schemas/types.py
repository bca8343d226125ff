"""Field types shared by the event payloads.

Personal data never appears in clear in an event: names, phone numbers, ID numbers and free text that policy
marks as personal are :data:`Encrypted` (AES-GCM, key id inside the value, see :mod:`pipelines.crypto`), and
look-ups use :data:`LookupToken` (keyed HMAC).  The validators only check the shape, so a plaintext value put in
one of these fields by mistake is refused.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

#: ``enc1.<key id>.<base64url(nonce | ciphertext | tag)>``
Encrypted = Annotated[str, StringConstraints(pattern=r"^enc1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]{24,}$")]
#: ``tok1.<key id>.<hex HMAC-SHA256>``
LookupToken = Annotated[str, StringConstraints(pattern=r"^tok1\.[A-Za-z0-9_-]{1,32}\.[0-9a-f]{64}$")]
#: HMAC-SHA256 of the normalised national ID number (64 hex), or ``h.<hospital>.<hex>`` for a person known only
#: to one hospital until a ``PatientLinked`` event joins the two.
PERSON_KEY_PATTERN = r"^([0-9a-f]{64}|h\.[A-Z0-9_-]{2,32}\.[0-9a-f]{32})$"
PersonKey = Annotated[str, StringConstraints(pattern=PERSON_KEY_PATTERN)]
HOSPITAL_CODE_PATTERN = r"^[A-Z0-9_-]{2,32}$"
HospitalCode = Annotated[str, StringConstraints(pattern=HOSPITAL_CODE_PATTERN)]
DicomUID = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Sex = Literal["M", "F", "O", "U"]
PatientClass = Literal["outpatient", "inpatient", "emergency", "physical_exam"]
Modality = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,4}$")]
ShortText = Annotated[str, Field(max_length=256)]
