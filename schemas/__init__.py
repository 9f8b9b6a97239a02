"""Event and result formats: msgpack job events between stages, the JSON result per image."""
