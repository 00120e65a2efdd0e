"""scan: horizon scanning for the policy team that owns LIVE monetization rules."""

__version__ = "0.1.0"
