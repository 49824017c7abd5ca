"""keelwatch."""
