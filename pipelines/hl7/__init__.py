"""HL7 v2 in: parse, convert to events, acknowledge, over MLLP.

Conventions a hospital's interface engineer needs (the full list is in ``docs/his_ingest.md``):

* Character set from MSH-18 (``UNICODE UTF-8``, ``GB 18030-2000``, ``GBK``, ``GB2312``, ``ASCII``, ``8859/1``); when
  it is empty, wrong or unknown, the bytes are tried as UTF-8, then GB18030. The ACK uses the same set.
* Times without an offset are China Standard Time (+08:00).
* The hospital is MSH-4 (sending facility), looked up in the hospital directory ``schemas/catalogs/hospitals.yaml`` (``hl7_facilities``).
* Z-messages (our convention): ``ZWY^Z01`` "doctor opened patient" = MSH, PID, optional PV1 (PV1-19 visit), and
  ``ZDR|doctor id|department|workstation``; ``ZWY^Z02`` "doctor signed in" = MSH and ZDR.
"""
