"""Which studies a caller may see. Staff roles see the province's studies (their reads are audited); a patient
sees the studies stored under their own person key and the hospital records linked to it; a share sees only the
studies the patient shared, until the share expires. Out-of-scope studies answer 404, never 403, so a token
cannot probe which studies exist."""
from __future__ import annotations

import sqlalchemy as sa

from api.auth import Principal
from streams.processors.history import person_links

STAFF = frozenset({"doctor", "operator", "regulator", "system"})


def visible_studies(platform, who: Principal) -> frozenset[str] | None:
    """The studies ``who`` may see, or ``None`` for no limit. Fails closed: a patient or share token without its
    scope sees nothing."""
    if who.role in STAFF:
        return None
    if who.role == "share":
        return who.studies or frozenset()
    if who.role == "patient" and who.person_key:
        with platform.projector.engine.connect() as conn:
            linked = conn.execute(sa.select(person_links.c.linked_key)
                                  .where(person_links.c.person_key == who.person_key)).scalars().all()
        return frozenset(platform.dicom_index.study_uids_of([who.person_key, *linked]))
    return frozenset()

