"""publish → search → install → update → yank through the real CLI against a registry served
on loopback, once on a local folder and once on S3 (a real moto server process)."""

from __future__ import annotations

import json
from pathlib import Path

from remora_lsp.packs.store import active_versions

from .conftest import PUBLISH_TOKEN, Cli, Publisher, make_home


def test_publish_search_install_update_yank(
    cli: Cli, registry_url: str, storage_url: str, publisher: Publisher, tmp_path: Path
) -> None:
    # a token created with the CLI, stored hashed in the registry's storage
    created = json.loads(
        cli("registry", "token", "create", "--storage", storage_url, "--scope", "publish", "--json")
    )
    token = created["token"]
    assert token.startswith("rmr_") and created["scope"] == "publish"

    out = cli("publish", str(publisher.pack("1.0.0")), "--registry", registry_url, "--token", token)
    assert "published demo@1.0.0 in namespace public" in out
    assert token not in out
    for version in ("1.1.0", "2.0.0"):
        cli("publish", str(publisher.pack(version)), "--registry", registry_url, "--token", token)

    found = json.loads(cli("search", "fastapi", "--registry", registry_url, "--json"))
    assert [(p["name"], p["latest"]) for p in found] == [("demo", "2.0.0")]
    assert json.loads(cli("search", "no-such-thing", "--registry", registry_url, "--json")) == []

    # another machine: its own home, trusting the publisher's key
    user = make_home(tmp_path / "user", publisher)
    out = cli("install", "pack:demo@^1", "--registry", registry_url, home=user)
    assert "installed demo@1.1.0" in out and "signed by 'publisher'" in out
    assert active_versions(user / "packs")["demo"].version == "1.1.0"

    # a new compatible version appears; update pulls it (staying on major 1)
    cli("publish", str(publisher.pack("1.2.0")), "--registry", registry_url, "--token", token)
    out = cli("update", "--registry", registry_url, home=user)
    assert "updated demo 1.1.0 → 1.2.0" in out
    assert "up to date" in cli("update", "demo", "--registry", registry_url, home=user)
    assert "2.0.0" in cli("update", "demo", "--major", "--registry", registry_url, home=user)

    # yank 1.2.0: ranges skip it, an exact pin still installs it
    cli("registry", "yank", "demo@1.2.0", "--registry", registry_url, "--token", PUBLISH_TOKEN)
    fresh = make_home(tmp_path / "fresh", publisher)
    assert "installed demo@1.1.0" in cli(
        "install", "pack:demo@~1", "--registry", registry_url, home=fresh
    )
    assert "(yanked)" in cli("install", "pack:demo@1.2.0", "--registry", registry_url, home=fresh)
    cli("registry", "yank", "demo@1.2.0", "--undo", "--registry", registry_url, "--token", token)
    other = make_home(tmp_path / "other", publisher)
    assert "installed demo@1.2.0" in cli(
        "install", "pack:demo@>=1.0,<2", "--registry", registry_url, home=other
    )

    # an untrusted signer is refused by the normal install rules
    stranger = make_home(tmp_path / "stranger", None)
    err = cli("install", "pack:demo", "--registry", registry_url, code=1, home=stranger)
    assert "trust" in err

    # revoked tokens stop working
    cli("registry", "token", "revoke", created["id"], "--storage", storage_url)
    import time

    time.sleep(2.1)  # the server caches token lookups for 2 s
    err = cli(
        "publish", str(publisher.pack("3.0.0")), "--registry", registry_url, "--token", token,
        code=1,
    )  # fmt: skip
    assert "401" in err and token not in err


def test_registries_from_config_and_env(
    cli: Cli, registry_url: str, publisher: Publisher, tmp_path: Path, monkeypatch
) -> None:
    cli("publish", str(publisher.pack("1.0.0")), "--registry", registry_url, "--token",
        PUBLISH_TOKEN)  # fmt: skip
    home = make_home(tmp_path / "cfg", publisher)
    dead = "http://127.0.0.1:9"  # nothing listens there: skipped, the next one answers
    (home / "config.yaml").write_text(
        "allow_unsigned: false\n"
        f"registries:\n  - {{url: {registry_url}, name: main}}\n"
        f"  - {{url: {dead}, token: secret-token, name: private}}\n"
        "other_package_key: 1\n"
    )
    out = cli("install", "pack:demo", home=home)
    assert "installed demo@1.0.0 from main" in out
    monkeypatch.setenv("REMORA_REGISTRY", registry_url)
    assert "already installed" in cli("install", "pack:demo@1.0.0", home=home)


def test_offline_install_is_one_line(cli: Cli, publisher: Publisher, tmp_path: Path) -> None:
    from .conftest import free_port

    home = make_home(tmp_path / "offline", publisher)
    url = f"http://127.0.0.1:{free_port()}"
    err = cli("install", "pack:demo", "--registry", url, code=1, home=home)
    assert "cannot reach the registry" in err and "installed packs keep working" in err


def test_registry_options_need_a_pack_spec(cli: Cli, publisher: Publisher) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(
        cli.app, ["install", str(publisher.pack("1.0.0")), "--registry", "http://127.0.0.1:1"]
    )
    assert result.exit_code == 2 and "only to pack:NAME" in result.stderr


def test_tokens_never_logged(
    cli: Cli, registry_url: str, storage_url: str, publisher: Publisher, tmp_path: Path,
    caplog,  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    import logging

    caplog.set_level(logging.DEBUG)
    created = json.loads(
        cli("registry", "token", "create", "--storage", storage_url, "--scope", "publish", "--json")
    )
    token = created["token"]
    cli("publish", str(publisher.pack("1.0.0")), "--registry", registry_url, "--token", token)
    home = make_home(tmp_path / "logged", publisher)
    out = cli("install", "pack:demo", "--registry", registry_url, "--token", token, home=home)
    err = cli("install", "pack:nothing", "--registry", registry_url, "--token", token, code=1)
    assert caplog.records  # the HTTP stack did log at DEBUG
    assert token not in caplog.text and token not in out and token not in err
    from remora_lsp.registry.client import RegistryRef

    assert token not in repr(RegistryRef(registry_url, token))


def test_private_pack_needs_a_read_token(
    cli: Cli, registry_url: str, storage_url: str, publisher: Publisher, tmp_path: Path,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    cli("publish", str(publisher.pack("1.0.0", name="secret")), "--namespace", "acme",
        "--registry", registry_url, "--token", PUBLISH_TOKEN)  # fmt: skip
    home = make_home(tmp_path / "private", publisher)
    err = cli("install", "pack:secret", "--registry", registry_url, code=1, home=home)
    assert "401" in err and "--token" in err
    assert "secret" not in cli("search", "--registry", registry_url, home=home)
    reader = json.loads(
        cli("registry", "token", "create", "--storage", storage_url, "-n", "acme", "--json")
    )["token"]
    monkeypatch.setenv("REMORA_REGISTRY", registry_url)
    monkeypatch.setenv("REMORA_REGISTRY_TOKEN", reader)
    assert "secret" in cli("search", home=home)
    assert "installed secret@1.0.0" in cli("install", "pack:secret", home=home)
