"""Settings (pure), loading publisher.toml over embedded defaults, and secrets."""
