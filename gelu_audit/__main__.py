"""Entry point for `python -m gelu_audit`."""

from __future__ import annotations

from gelu_audit.cli.main import main

if __name__ == "__main__":
    main()
