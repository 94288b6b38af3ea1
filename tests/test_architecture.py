"""The import direction (devkit → handlers → bot → storage) and the manifest, checked against the code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# The composition root wires the Slack edge to the core; it is the one place in bot/ allowed to see handlers.
COMPOSITION_ROOT = ROOT / "bot" / "bootstrap.py"

FORBIDDEN = {
    "storage": ("bot", "handlers", "devkit", "slack_bolt", "slack_sdk", "openai", "apscheduler"),
    "bot": ("handlers", "devkit", "slack_bolt", "slack_sdk"),
    "handlers": ("devkit",),
}
# Services never reach into the storage session or engine: they use the query modules behind `Repo`.
SERVICES = ("channels", "drafts", "rounds", "variations", "jobs", "posting", "patterns", "sweep", "inbox")
# The product never runs on the development kit; only the CLI's `demo` command loads it, lazily.
CLI = ROOT / "bot" / "__main__.py"
DEVKIT_ALLOWED = {CLI}
# Libraries that must stay inside one module each.
CONFINED = {
    "apscheduler": {ROOT / "bot" / "ticker.py"},
    "prometheus_client": {ROOT / "bot" / "metrics.py"},
    "PIL": {ROOT / "bot" / "typesetting.py"},
    "boto3": {ROOT / "bot" / "bucket.py"},
    "botocore": {ROOT / "bot" / "bucket.py"},
    "openai": {
        ROOT / "bot" / "drafting.py",
        ROOT / "bot" / "safety.py",
        ROOT / "bot" / "keyframes.py",
        ROOT / "bot" / "providers" / "openai_compat.py",
    },
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_each_package_imports_only_in_the_allowed_direction() -> None:
    wrong = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == COMPOSITION_ROOT:
                continue
            for module in imported_modules(path):
                top = module.split(".")[0]
                if top == "devkit" and path in DEVKIT_ALLOWED:
                    continue  # checked below: the demo command, lazily
                if top in forbidden:
                    wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert wrong == []


def test_the_composition_root_is_the_only_bot_module_that_sees_handlers() -> None:
    assert any(m.startswith("handlers") for m in imported_modules(COMPOSITION_ROOT))


def test_services_use_query_modules_not_the_session() -> None:
    wrong = []
    for name in SERVICES:
        source = (ROOT / "bot" / f"{name}.py").read_text()
        for needle in (".session.", "sqlmodel", "sqlalchemy", "repo.add(", "repo.get("):
            if needle in source:
                wrong.append(f"bot/{name}.py uses {needle}")
    assert wrong == []


def devkit_importers(root: Path, *, allowed: set[Path] | None = None) -> list[str]:
    """Product modules (bot/, handlers/, storage/) under `root` that import devkit, except `allowed`."""
    found = []
    for package in FORBIDDEN:
        for path in sorted((root / package).rglob("*.py")):
            if path in (allowed or set()):
                continue
            if any(m.split(".")[0] == "devkit" for m in imported_modules(path)):
                found.append(str(path.relative_to(root)))
    return found


def test_the_product_never_imports_the_devkit() -> None:
    assert devkit_importers(ROOT, allowed=DEVKIT_ALLOWED) == []


def test_only_the_demo_command_loads_the_devkit_and_only_lazily() -> None:
    tree = ast.parse(CLI.read_text())
    top_level = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(str(m).startswith("devkit") for m in top_level)
    demo = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "cmd_demo")
    lazy = {n.module for n in ast.walk(demo) if isinstance(n, ast.ImportFrom)}
    assert "devkit.demo" in lazy


def test_the_devkit_check_catches_a_wrong_arrow(tmp_path: Path) -> None:
    (tmp_path / "handlers").mkdir()
    (tmp_path / "bot").mkdir()
    (tmp_path / "storage").mkdir()
    (tmp_path / "handlers" / "publisher.py").write_text("from devkit.slack_api import FakeSlack\n")
    (tmp_path / "bot" / "__main__.py").write_text("def cmd_demo() -> None:\n    import devkit.demo\n")
    assert devkit_importers(tmp_path) == ["bot/__main__.py", "handlers/publisher.py"]
    allowed = {tmp_path / "bot" / "__main__.py"}
    assert devkit_importers(tmp_path, allowed=allowed) == ["handlers/publisher.py"]


def test_confined_libraries_stay_in_their_module() -> None:
    wrong = []
    for library, allowed in CONFINED.items():
        for package in FORBIDDEN:
            for path in sorted((ROOT / package).rglob("*.py")):
                uses = any(m.split(".")[0] == library for m in imported_modules(path))
                if uses and path not in allowed:
                    wrong.append(f"{path.relative_to(ROOT)} imports {library}")
    assert wrong == []


def test_the_import_check_catches_a_wrong_arrow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from handlers.blocks import escape\nimport slack_sdk\n")
    assert {"handlers.blocks", "slack_sdk"} <= imported_modules(bad)


@pytest.mark.parametrize("name", ["manifest.yml", "manifest.http.yml"])
def test_the_manifest_declares_what_the_app_listens_for(name: str) -> None:
    manifest = yaml.safe_load((ROOT / name).read_text())
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    source = "\n".join(p.read_text() for p in (ROOT / "handlers").glob("*.py"))
    assert commands == {"/sora"} and '@app.command("/sora")' in source
    for event in ("reaction_added", "reaction_removed"):
        assert event in events and f'@app.event("{event}")' in source
    assert {"message.channels", "message.groups"} <= events and '@app.event("message")' in source
    assert manifest["settings"]["interactivity"]["is_enabled"] is True and "@app.action(" in source
    needed = {"commands", "chat:write", "reactions:read", "channels:history", "groups:history", "files:write"}
    assert needed <= scopes
    # Only what the code calls: conversations.info (the *:read scopes) and users.info; nothing it never uses.
    assert {"channels:read", "groups:read", "im:read", "mpim:read", "users:read"} <= scopes
    assert "reactions:write" not in scopes
    # `/sora export` opens the bot's DM with the asker (Slack has no ephemeral files).
    assert "im:write" in scopes and "conversations_open" in source


def test_the_two_manifests_differ_only_in_transport() -> None:
    socket = yaml.safe_load((ROOT / "manifest.yml").read_text())
    http = yaml.safe_load((ROOT / "manifest.http.yml").read_text())
    assert socket["oauth_config"] == http["oauth_config"]
    assert (
        socket["settings"]["socket_mode_enabled"] is True and http["settings"]["socket_mode_enabled"] is False
    )
    url = "https://YOUR-HOST/slack/events"
    assert http["settings"]["event_subscriptions"]["request_url"] == url
    assert http["settings"]["interactivity"]["request_url"] == url
    assert [c["url"] for c in http["features"]["slash_commands"]] == [url]
    assert "request_url" not in socket["settings"]["event_subscriptions"]
