# Makes templates/ the package kata_imagefix.templates inside the wheel (see pyproject.toml).
