"""Dockerfiles: parse (stages, expansion, heredocs), the effective USER, lint and patch."""
