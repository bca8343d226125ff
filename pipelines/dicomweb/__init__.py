"""DICOMweb (QIDO-RS, WADO-RS, STOW-RS) over the lossless object store, and the per-series bundles (fast path).

Pure parts (query matching, multipart framing, transfer-syntax negotiation, rendering) are apart from the adapters
(the object reader, the catalog in SQL, the bundle files); :mod:`pipelines.dicomweb.service` ties them together and
``api/dicomweb.py`` only authenticates, audits and turns its answers into HTTP.
"""
