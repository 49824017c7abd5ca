"""``keys_main``: the CLI's key commands, on a stopped store and over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keelwatch.collector.server import keys_main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert keys_main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_create_list_revoke_on_a_stopped_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    created = run(capsys, "--data", data, "create", "--role", "admin", "--project", "shop")
    assert created["key"].startswith("kw_")
    listed = run(capsys, "--data", data, "list")
    assert [k["key_id"] for k in listed] == [created["key_id"]]
    revoked = run(capsys, "--data", data, "revoke", created["key_id"])
    assert revoked["revoked_at"] is not None


def test_over_http_with_the_bootstrap_key(
    served: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with served(api_key="bootstrap-key-123") as srv:
        common = ["--url", srv.url, "--api-key", "bootstrap-key-123"]
        created = run(capsys, *common, "create", "--role", "ingest", "--name", "svc")
        assert created["role"] == "ingest"
        assert created["key_id"] in {k["key_id"] for k in run(capsys, *common, "list")}
        with pytest.raises(SystemExit, match="HTTP 401"):
            keys_main(["--url", srv.url, "--api-key", "wrong", "list"])
