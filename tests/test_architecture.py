"""The import direction (handlers → bot → storage) and the manifest, checked against the code."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# The composition root wires the Slack edge to the core; it is the one place in bot/ allowed to see handlers.
COMPOSITION_ROOT = ROOT / "bot" / "bootstrap.py"

FORBIDDEN = {
    "storage": ("bot", "handlers", "slack_bolt", "slack_sdk", "openai", "apscheduler"),
    "bot": ("handlers", "slack_bolt", "slack_sdk"),
    "handlers": (),
}
# Services never reach into the storage session or engine: they use the query modules behind `Repo`.
SERVICES = ("channels", "drafts", "rounds", "variations", "jobs", "posting", "patterns", "sweep", "inbox")
# Libraries that must stay inside one module each.
CONFINED = {
    "apscheduler": {ROOT / "bot" / "ticker.py"},
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


def test_the_manifest_declares_what_the_app_listens_for() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
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
