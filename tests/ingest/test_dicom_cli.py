"""The `wanying dicom` commands over a temp data dir: replay a refused instance after its AE is registered,
verify the manifest against storage, complete the study."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from pipelines.dicom.cli import _wire, app
from pipelines.dicom.parse import STATUS_REFUSED_NOT_AUTHORISED, DicomRejected


def test_replay_verify_complete(tmp_path, monkeypatch, ct_files):
    monkeypatch.setenv("WANYING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WANYING_LOG_FSYNC", "off")
    wired = _wire(None, None)
    for f in ct_files[:3]:  # as the SCP files them for an AE nobody registered yet
        wired.ingest.reject(DicomRejected("calling AE 'NEW_CT' is not registered", STATUS_REFUSED_NOT_AUTHORISED),
                            f.read_bytes(), None, "NEW_CT")
    peers = tmp_path / "peers.yaml"
    peers.write_text("version: t\nhospitals:\n  - {code: AHSL, name: x, level: 三级甲等, dicom_aes: [NEW_CT]}\n",
                         encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["replay", "--all", "--peers", str(peers)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {"replayed": 3, "still_rejected": 0}

    study_uid = wired.ingest.index.studies_in()[0].study_uid
    verified = runner.invoke(app, ["manifest", study_uid, "--verify"])
    assert verified.exit_code == 0 and json.loads(verified.output)["ok"] is True
    done = runner.invoke(app, ["complete", "--stable-age", "0"])
    assert done.exit_code == 0 and json.loads(done.output)["instances"] == 3
