"""The thin HTTP API: authenticate, authorize, validate, then append an event or read a view."""
