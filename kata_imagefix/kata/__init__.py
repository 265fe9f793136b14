"""Kata runtime configuration as Kata loads it, and the guest-pull budget."""
