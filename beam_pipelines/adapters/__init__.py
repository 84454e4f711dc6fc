"""Input adapters: raw formats -> canonical records.

See docs/architecture.md, "Adapters: raw logs to canonical records".
"""
