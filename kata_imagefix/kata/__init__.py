"""Kata runtime configuration as Kata loads it, and the guest-pull budget."""

TIMEOUT_KEY = "create_container_timeout"  # here, not in config.py: the rules name them without loading it
MEMORY_KEY = "default_memory"
