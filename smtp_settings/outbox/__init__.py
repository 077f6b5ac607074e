"""The outbox: every e-mail is stored first, then delivered by a worker through Manage SMTP."""
