"""Administration > Manage SMTP: outgoing mail settings, above all OAuth 2.0 to Exchange Online."""
