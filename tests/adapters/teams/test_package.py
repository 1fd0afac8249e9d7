"""The Teams app package: manifest with the bot's app id, the message action, and the two icons."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest

from adapters.teams.package import PackageError, build_app_package

APP_ID = "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b"


def png_size(data: bytes) -> tuple[int, int, int]:
    """Width, height and PNG colour type (6 = RGBA) from the IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height, data[25]


def test_the_package_holds_the_manifest_with_the_app_id_and_both_icons_at_its_root(tmp_path: Path) -> None:
    out = build_app_package(APP_ID, tmp_path, host="https://bot.example.com/api/messages")

    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(zf.read("manifest.json"))
        color, outline = png_size(zf.read("color.png")), png_size(zf.read("outline.png"))
    assert out.name == "escalator-teams.zip"
    assert float(manifest["manifestVersion"]) >= 1.16
    assert manifest["id"] == APP_ID
    assert [b["botId"] for b in manifest["bots"]] == [APP_ID]
    assert manifest["validDomains"] == ["bot.example.com"]
    assert manifest["developer"]["privacyUrl"] == "https://bot.example.com/privacy"
    assert "{{" not in json.dumps(manifest)
    assert (color[:2], outline[:2]) == ((192, 192), (32, 32))
    assert outline[2] == 6  # the outline icon needs transparency


def test_the_manifest_offers_the_commands_and_the_escalate_this_message_action(tmp_path: Path) -> None:
    with zipfile.ZipFile(build_app_package(APP_ID, tmp_path / "app.zip", host="bot.example.com")) as zf:
        manifest = json.loads(zf.read("manifest.json"))

    bot = manifest["bots"][0]
    assert set(bot["scopes"]) == {"team", "groupChat", "personal"}
    commands = bot["commandLists"][0]["commands"]
    assert [c["title"] for c in commands] == ["escalate", "case", "oncall", "swarm", "kb", "crisis", "digest",
                                              "help"]
    assert all(len(c["title"]) <= 32 and len(c["description"]) <= 128 for c in commands)
    [extension] = manifest["composeExtensions"]
    assert extension["botId"] == APP_ID
    assert extension["commands"] == [{
        "id": "escalateMessage", "type": "action", "title": "Escalate this message",
        "description": "Open a support case from this message, with the message linked",
        "context": ["message"], "fetchTask": True}]
    assert len(manifest["name"]["short"]) <= 30 and len(manifest["description"]["short"]) <= 80
    assert len(manifest["description"]["full"]) <= 4000
    assert manifest["validDomains"] == ["bot.example.com"]


@pytest.mark.parametrize("host", [None, "", "  "])
def test_a_package_without_a_host_is_refused_instead_of_shipping_a_placeholder(tmp_path: Path,
                                                                              host: str | None) -> None:
    with pytest.raises(PackageError, match="Give the bot's public host with --host"):
        build_app_package(APP_ID, tmp_path, host)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("app_id", ["", "my-bot", "6f1c2a9e3b4d4e5f8a7b1c2d3e4f5a6b"])
def test_an_app_id_that_is_not_a_guid_is_refused_with_a_clear_message(tmp_path: Path, app_id: str) -> None:
    with pytest.raises(PackageError, match="MICROSOFT_APP_ID must be the bot's Microsoft App ID"):
        build_app_package(app_id, tmp_path)
    assert list(tmp_path.iterdir()) == []
