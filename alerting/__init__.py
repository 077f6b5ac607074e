"""Alerts outside mail: Administration > Alerts (Apprise destinations) and what is alerted."""
