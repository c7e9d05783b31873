"""The REST edge: Envoy config generation (config.py) and its Lua error envelope (envelope.lua)."""
