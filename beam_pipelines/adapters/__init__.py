"""Input adapters: raw formats -> canonical records (DESIGN §3)."""
