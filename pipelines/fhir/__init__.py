"""FHIR R4 JSON in (Encounter, ServiceRequest, DiagnosticReport, Patient): resources to catalog events."""
