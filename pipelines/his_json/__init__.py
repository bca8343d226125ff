"""Plain JSON HIS events (for HIS vendors without HL7 or FHIR): validate, convert to catalog events."""
