from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import entry_points, requires

DOCUMENT_STACK = {
    "httpx",
    "numpy",
    "opencv-python-headless",
    "pillow",
    "pillow-heif",
    "pypdfium2",
    "simplejpeg",
    "rapidocr",
    "onnxruntime",
    "symspellpy",
    "jsonschema",
    "rapidfuzz",
}


def _requirements() -> list[tuple[str, str | None]]:
    """(distribution name, extra or None) for each requirement of the installed project."""
    out = []
    for line in requires("asyncpipe") or []:
        name = re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].strip().lower()
        extra = re.search(r'extra == "([^"]+)"', line)
        out.append((name, extra.group(1) if extra else None))
    return out


class TestPackaging:
    """The framework installs without the document stack; the app is an extra away."""

    def test_base_install_has_no_document_packages(self) -> None:
        """`pip install asyncpipe` pulls in no OCR, image, PDF, LLM-client or schema package."""
        base = {name for name, extra in _requirements() if extra is None}
        assert base, "no base requirements read: is the project installed?"
        assert base & DOCUMENT_STACK == set()

    def test_documents_extra_holds_the_stack(self) -> None:
        """The `documents` extra brings the whole document stack, and `test` pulls it in."""
        documents = {name for name, extra in _requirements() if extra == "documents"}
        assert documents == DOCUMENT_STACK
        assert ("asyncpipe", "test") in _requirements()
        assert any(
            r.startswith("asyncpipe[documents]") and 'extra == "test"' in r
            for r in requires("asyncpipe") or []
        )

    def test_document_app_is_registered(self) -> None:
        """The document app is an entry point of the `asyncpipe.apps` group."""
        apps = {ep.name: ep.value for ep in entry_points(group="asyncpipe.apps")}
        assert apps.get("documents") == "stages.app:app"

    def test_framework_imports_no_document_module(self) -> None:
        """Importing the framework and its command line loads none of the document stack."""
        code = (
            "import sys, asyncpipe, asyncpipe._cli; print(sorted(m for m in "
            "('cv2', 'numpy', 'httpx', 'onnxruntime', 'rapidocr', 'pypdfium2', 'PIL', "
            "'symspellpy', 'jsonschema', 'stages') if m in sys.modules))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == "[]"
