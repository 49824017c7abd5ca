"""``keelwatch keys create|list|revoke``: API keys over the server's API, or on a stopped store.

With ``--data DIR`` the command opens the embedded store directly (only while no server owns
it); otherwise it calls ``/v1/keys`` on ``--url`` with an admin key (``--api-key``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from keelwatch._client import ServerClient, ServerError

from ._keys import ROLES, KeyRing

__all__ = ["keys_main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keelwatch keys", description=__doc__)
    parser.add_argument("--url", help="server URL (KEELWATCH_ENDPOINT, http://127.0.0.1:8787)")
    parser.add_argument("--api-key", help="an admin key (KEELWATCH_API_KEY)")
    parser.add_argument("--data", help="open this embedded store directly (server stopped)")
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create a key and print it (shown once)")
    create.add_argument("--role", required=True, choices=sorted(ROLES))
    create.add_argument("--name", default="", help="what the key is for")
    create.add_argument("--project", default="", help="project (default: the caller's)")
    sub.add_parser("list", help="list keys (never the keys themselves)")
    revoke = sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    return parser


def _http(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    client = ServerClient(args.url, args.api_key, timeout_s=30)
    data = json.dumps(body).encode() if body is not None else None
    try:
        return client.request(method, path, data)
    except ServerError as exc:
        raise SystemExit(f"keelwatch keys: {exc}") from exc


def _local(args: argparse.Namespace) -> Any:
    from keelwatch.store import open_store

    from ._routes_admin import key_to_json

    store = open_store(args.data)
    try:
        ring = KeyRing(store)
        if args.action == "create":
            new = ring.create(args.project or "default", args.role, args.name)
            return {"key": new.key, **key_to_json(new.record)}
        if args.action == "list":
            return [key_to_json(k) for k in ring.records()]
        try:
            return key_to_json(ring.revoke(args.key_id))
        except KeyError:
            raise SystemExit(f"keelwatch keys: no key {args.key_id!r}") from None
    finally:
        store.close()


def keys_main(argv: list[str] | None = None) -> int:
    """Run ``keelwatch keys ...``; prints JSON, returns the exit status."""
    args = _parser().parse_args(argv)
    if args.data:
        result = _local(args)
    elif args.action == "create":
        spec = {"role": args.role, "name": args.name}
        if args.project:
            spec["project"] = args.project
        result = _http(args, "POST", "/v1/keys", spec)
    elif args.action == "list":
        result = _http(args, "GET", "/v1/keys")
    else:
        result = _http(args, "DELETE", f"/v1/keys/{args.key_id}")
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
