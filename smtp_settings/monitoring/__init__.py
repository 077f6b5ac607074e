"""Watching mail before it stops: secret-expiry reminders, the daily health check and the
alerts they send (``alerts``, ``reminders``, ``health_check``), mail at a glance and the
banners (``status``), and ``/healthz`` for operators (``healthz``)."""
