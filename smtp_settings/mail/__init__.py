"""The mail engine: plain values in; it knows nothing of HTTP, forms or the database."""
