"""DICOM ingest: the C-STORE SCP, pulls from hospital PACS, the accept path, study completion."""
