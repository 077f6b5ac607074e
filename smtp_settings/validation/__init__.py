"""Validate: the steps that prove unsaved settings end to end; the table explaining failures."""
