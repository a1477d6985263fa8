"""The real Airflow api-server app, in-process, for the reports plugin's tests.

:func:`api_server` builds Airflow's own FastAPI app (``airflow.api_fastapi.app.create_app``),
which loads ``plugins/`` through the plugins manager and mounts the reports app under
``/mlops``, with the simple auth manager and a known admin password. Tokens come from
Airflow's real machinery: ``POST /auth/token`` for the admin, the auth manager's
``generate_jwt`` for other users. Nothing listens on a port.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class ApiServer:
    client: Any
    admin_token: str

    def headers(self, token: str | None = None) -> dict[str, str]:
        """Bearer headers for ``token`` (the admin's by default)."""
        return {"Authorization": f"Bearer {token or self.admin_token}"}

    def token_for(self, username: str, role: str | None, *, expires_in: int | None = None) -> str:
        """A JWT signed by the api-server's auth manager for a simple-auth-manager user."""
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        manager = get_auth_manager()
        user = SimpleAuthManagerUser(username=username, role=role)
        if expires_in is None:
            return manager.generate_jwt(user)
        return manager.generate_jwt(user, expiration_time_in_seconds=expires_in)


@contextlib.contextmanager
def api_server(folder: Path) -> Iterator[ApiServer]:
    """Airflow's api-server app with the simple auth manager (user ``admin``), as a TestClient."""
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from fastapi.testclient import TestClient

    password = secrets.token_hex(16)
    passwords = folder / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({"admin": password}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__AUTH_MANAGER",
                  "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
        mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))
        purge_cached_app()
        _forget_jwt_keys()
        try:
            client = TestClient(create_app(apps="core"))
            reply = client.post("/auth/token", json={"username": "admin", "password": password})
            assert reply.status_code in (200, 201), reply.text
            yield ApiServer(client=client, admin_token=reply.json()["access_token"])
        finally:
            purge_cached_app()
            _forget_jwt_keys()


def _forget_jwt_keys() -> None:
    """Airflow caches the JWT signer and validator on the auth manager class for the life of
    the process; a new secret (another api-server in the same test session) needs new ones,
    or every token of this server fails its signature check."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager

    BaseAuthManager._get_token_signer.cache_clear()
    BaseAuthManager._get_token_validator.cache_clear()
