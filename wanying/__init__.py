"""The composition root: settings, wiring and the ``wanying`` command."""
