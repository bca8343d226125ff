"""Patient and share scopes on DICOMweb: a patient reads only the studies stored under their person key (and the
hospital records linked to it), a share only the studies shared and only until it expires; anything else is 404
and searches list only what is in scope."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import httpx
import pydicom
import pytest

from api.app import create_app
from api.auth import Principal, TokenStore, issue_token
from pipelines.dicom.synthetic import ct_series
from schemas import events as ev
from schemas.registry import REGISTRY
from streams.topics import publish
from tests.dicomweb.conftest import HOSPITAL, ingest_files, make_platform, serve

MRNS = ("MRN-SCOPE-1", "MRN-SCOPE-2")


@pytest.fixture(scope="module")
def two_patients(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scopes")
    platform, tokens, tokens_file = make_platform(tmp)
    studies = []
    for n, mrn in enumerate(MRNS):
        paths = ct_series(tmp / mrn, slices=3, size=32, patient_id=mrn, accession=f"ACC-S{n}", seed=n)
        ingest_files(platform, paths)
        studies.append(pydicom.dcmread(paths[0], stop_before_pixels=True).StudyInstanceUID)
    local = [platform.keys.hospital_person_key(HOSPITAL, mrn) for mrn in MRNS]
    # The first patient's national key is linked to their hospital record; the patient token carries the former.
    national = "c" * 64
    publish(platform.log, [REGISTRY.new(ev.PatientLinked(person_key=national, linked_key=local[0], hospital=HOSPITAL,
                                                         method="id_number"), key=national, source=HOSPITAL,
                                        occurred_at=datetime.now(timezone.utc))])
    platform.runner().run_until_caught_up()
    scoped = {
        "patient": issue_token(tokens_file, Principal("p-1", "patient", person_key=national)),
        "unlinked-patient": issue_token(tokens_file, Principal("p-9", "patient", person_key="d" * 64)),
        "share": issue_token(tokens_file, Principal("s-1", "share", studies=frozenset({studies[1]}),
                                                    expires_at=time.time() + 3600)),
        "expired-share": issue_token(tokens_file, Principal("s-2", "share", studies=frozenset({studies[1]}),
                                                            expires_at=time.time() - 1)),
    }
    served = serve(create_app(platform, TokenStore.load(tokens_file)))
    yield served.url, {**tokens, **scoped}, studies
    served.stop()
    platform.close()


def _get(url: str, token: str, path: str, **params) -> httpx.Response:
    return httpx.get(f"{url}/dicomweb{path}", params=params, timeout=30,
                     headers={"Authorization": f"Bearer {token}", "Accept": "application/dicom+json"})


def _found(resp: httpx.Response) -> set[str]:
    return set() if resp.status_code == 204 else {r["0020000D"]["Value"][0] for r in resp.json()}


def test_a_patient_sees_their_own_studies_only(two_patients):
    url, tokens, (mine, theirs) = two_patients
    assert _found(_get(url, tokens["patient"], "/studies")) == {mine}
    assert _get(url, tokens["patient"], f"/studies/{mine}/metadata").status_code == 200
    refused = _get(url, tokens["patient"], f"/studies/{theirs}/metadata")
    assert refused.status_code == 404 and "may see" in refused.json()["detail"]
    # Asking for the other study by UID finds nothing rather than leaking it.
    assert _found(_get(url, tokens["patient"], "/studies", StudyInstanceUID=f"{mine},{theirs}")) == {mine}
    assert _get(url, tokens["patient"], "/studies", StudyInstanceUID=theirs).status_code == 204


def test_a_patient_token_without_linked_records_sees_nothing(two_patients):
    url, tokens, (mine, _) = two_patients
    assert _get(url, tokens["unlinked-patient"], "/studies").status_code == 204
    assert _get(url, tokens["unlinked-patient"], f"/studies/{mine}/metadata").status_code == 404


def test_a_share_sees_the_shared_study_until_it_expires(two_patients):
    url, tokens, (first, shared) = two_patients
    assert _found(_get(url, tokens["share"], "/studies")) == {shared}
    assert _get(url, tokens["share"], f"/studies/{shared}/metadata").status_code == 200
    assert _get(url, tokens["share"], f"/studies/{first}/metadata").status_code == 404
    expired = _get(url, tokens["expired-share"], f"/studies/{shared}/metadata")
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


def test_staff_are_not_limited(two_patients):
    url, tokens, studies = two_patients
    assert _found(_get(url, tokens["doctor"], "/studies")) == set(studies)


def test_the_operator_issues_scoped_tokens_from_the_cli(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from wanying.cli import app

    monkeypatch.setenv("WANYING_DATA_DIR", str(tmp_path))
    (tmp_path / "api-tokens.json").write_text('{"tokens": []}')
    cli = CliRunner()
    refused = cli.invoke(app, ["tokens", "issue", "--role", "share", "--name", "s-1", "--study", "1.2.3"])
    assert refused.exit_code == 2 and "needs --study and --days" in refused.output
    issued = cli.invoke(app, ["tokens", "issue", "--role", "share", "--name", "s-1", "--study", "1.2.3",
                              "--study", "1.2.4", "--days", "7"])
    assert issued.exit_code == 0, issued.output
    who = TokenStore.load(tmp_path / "api-tokens.json").principal(issued.output.strip())
    assert (who.role, who.studies) == ("share", frozenset({"1.2.3", "1.2.4"}))
    assert 6.9 * 86400 < who.expires_at - time.time() <= 7 * 86400
    assert issued.output.strip() not in (tmp_path / "api-tokens.json").read_text()  # only the hash is kept
