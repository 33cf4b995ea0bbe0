"""Write the server's OpenAPI document to web-client/openapi.json.

The typed API layer (src/api/schema.d.ts) is generated from that file, and
tests/test_web_contract.py fails when it no longer matches what the server builds, so the
client and the server cannot drift apart silently. Run `npm run openapi:refresh` after
changing a route or a request body.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "web-client" / "openapi.json"


def render() -> str:
    sys.path.insert(0, str(ROOT))
    import server.app  # noqa: F401  (importing the app registers every route)
    from server.api.openapi import build

    return json.dumps(build(), ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
