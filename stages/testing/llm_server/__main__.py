"""
Run the test server: ``python -m stages.testing.llm_server --port 8000 --latency 0.2``.
"""

from __future__ import annotations

from ._serve import main

__all__: list[str] = []

if __name__ == "__main__":
    main()
