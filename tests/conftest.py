"""Test-wide settings. The hub must never be contacted: set offline mode before any import."""

import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# ../shared holds read-only reference data (benchmark scenes, real photos); tests that use it
# skip cleanly where it is absent.
SHARED = REPO.parent / "shared"
