"""``python -m openai_sse``: the ``openai-sse`` command line."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
