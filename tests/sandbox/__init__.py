"""Local stand-ins for Microsoft Entra ID and Exchange Online, for tests and for trying the console.

``python -m tests.sandbox`` (``make sandbox``) starts both with a ready tenant.
They listen on loopback only and speak the real protocols: HTTPS with OIDC
discovery and the client-credentials token endpoint, and SMTP with STARTTLS
and AUTH XOAUTH2, answering each failure the way the real services do.
"""
