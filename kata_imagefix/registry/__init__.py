"""Docker Registry HTTP API v2 client: auth, credentials, verified manifests and blobs."""
