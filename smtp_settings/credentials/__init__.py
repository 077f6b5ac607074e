"""Credentials as rows: client secrets, certificates and Basic passwords, in use or next."""
