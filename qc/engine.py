"""Score one exam: decide the body part, run the modality's analysis, apply the protocol, add data checks."""
from __future__ import annotations

from pathlib import Path

from qc import bodypart, ct, datachecks, mr, radiograph
from qc.exam import Exam, load
from qc.protocol import get
from qc.scoring import Measurement, QCResult, score

ANALYSES = {"radiograph": radiograph.measure, "ct": ct.measure, "mr": mr.measure}


def score_exam(exam: Exam, protocol_id: str | None = None) -> QCResult:
    decision = bodypart.decide(exam)
    pid = protocol_id or decision.body_part
    if pid is None:
        raise ValueError("body part unknown: no usable tags and the image is not recognised")
    proto = get(pid)
    measurements = ANALYSES[proto.kind](exam, proto.params)
    if decision.tag_guess is None:
        agree = Measurement(float("nan"), note="no body-part tags")
    else:
        agree = Measurement(1.0 if decision.tag_guess == pid else 0.0,
                            None if decision.tag_guess == pid else {"tags_say": decision.tag_guess, "image_says": pid})
    measurements["body_part_agreement"] = agree
    result = score(proto, measurements, decision.source)
    result.data_checks = datachecks.check(exam.datasets, exam.is_volume)
    return result


def score_path(path: Path, protocol_id: str | None = None) -> QCResult:
    return score_exam(load(Path(path)), protocol_id)
