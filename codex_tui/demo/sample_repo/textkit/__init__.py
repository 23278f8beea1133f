"""textkit: small text utilities."""

__version__ = "0.3.0"
