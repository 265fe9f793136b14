"""Fixed images: plan, render from templates, build and verify, or rewrite in the registry."""
