"""One formatter per format, all fed the same ScanResult list."""

FORMATS = ("text", "json", "sarif", "gnu")
