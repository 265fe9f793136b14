"""What a pod needs on Kata, and manifests edited line by line."""
