"""Images from any source as one model: references, documents, layers, union lookups, sources."""
