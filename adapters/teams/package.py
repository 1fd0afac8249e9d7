"""The Teams app package: manifest.json with the bot's app id filled in, plus the two icons, zipped.

Upload the zip in Teams (Apps → Manage your apps → Upload an app) or through the Teams admin
center. The CLI exposes this as `escalator teams-package --app-id ID --host HOST`; the host is
required, so no package ever ships a placeholder domain.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

MANIFEST_DIR = Path(__file__).parent / "manifest"
FILES = ("manifest.json", "color.png", "outline.png")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class PackageError(ValueError):
    """The package cannot be built as asked; the message says what to change."""


def host_of(value: str) -> str:
    """`bot.example.com` from `https://bot.example.com/api/messages` or `bot.example.com`."""
    value = value.strip()
    parsed = urlparse(value if "://" in value else f"https://{value}")
    if not parsed.hostname:
        raise PackageError(f"'{value}' is not a host name (write e.g. bot.example.com)")
    return parsed.hostname + (f":{parsed.port}" if parsed.port else "")


def render_manifest(app_id: str, host: str | None = None) -> dict[str, Any]:
    """manifest.json with the app id and host filled in, checked for leftover placeholders."""
    app_id = app_id.strip()
    if not GUID.match(app_id):
        raise PackageError(f"MICROSOFT_APP_ID must be the bot's Microsoft App ID, a GUID such as "
                           f"00000000-0000-0000-0000-000000000000 (got '{app_id or 'nothing'}')")
    if not host or not host.strip():
        raise PackageError("Give the bot's public host with --host (e.g. --host bot.example.com, the HOST of "
                           "https://HOST/api/messages): Teams needs it for the app's links and validDomains")
    text = (MANIFEST_DIR / "manifest.json").read_text(encoding="utf-8")
    text = text.replace("{{MICROSOFT_APP_ID}}", app_id).replace("{{HOST}}", host_of(host))
    leftover = re.findall(r"\{\{[A-Z_]+\}\}", text)
    if leftover:
        raise PackageError(f"manifest.json still has placeholders: {', '.join(sorted(set(leftover)))}")
    manifest: dict[str, Any] = json.loads(text)
    return manifest


def build_app_package(app_id: str, out: Path, host: str | None = None) -> Path:
    """Write the Teams app package zip to `out` (a file, or a directory for escalator-teams.zip)."""
    out = Path(out)
    if out.is_dir():
        out = out / "escalator-teams.zip"
    manifest = render_manifest(app_id, host)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        for name in FILES[1:]:
            zf.write(MANIFEST_DIR / name, arcname=name)  # Teams wants the files at the zip's root
    return out
