"""Models every feature shares, below the rules and every command: they import nothing of the package."""
