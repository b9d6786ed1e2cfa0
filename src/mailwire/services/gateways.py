"""SMTP gateways as a use case: list, show, register, change and remove them.

The domain's rules (id pattern, host, port, no line breaks) are applied here
again, whoever the caller is, so the UI and the command line cannot store what
the API would refuse.

Passwords are never shown: a gateway reads back with `MASK` in their place. A
client that sends back what it read therefore sends the mask; taken literally
it would replace the stored password with six asterisks. As for the instance
settings, the mask sent for a gateway that has a password keeps that password,
and the mask sent for one that has none is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from functools import partial
from typing import Any, Literal, TypeVar

from mailwire.domain.gateways import (
    MASK,
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MAX_USER_LENGTH,
    Gateway,
    check_gateway_id,
    check_host,
    check_port,
    check_text,
    new_gateway_id,
)
from mailwire.errors import InputError, NotFoundError
from mailwire.store.gateways import (
    KEEP_PASSWORD,
    GatewayPage,
    GatewayValues,
    PasswordChange,
)
from mailwire.store.store import Store

T = TypeVar("T")


def not_found() -> NotFoundError:
    return NotFoundError("No gateway has this id", code="GatewayNotFound")


class GatewayService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def list(self, *, page: int, page_size: int) -> GatewayPage:
        return await self._store.gateways.page(offset=page * page_size, limit=page_size)

    async def get(self, gateway_id: str) -> Gateway:
        gateway = await self._store.gateways.get(gateway_id)
        if gateway is None:
            raise not_found()
        return gateway

    async def create(
        self, gateway_id: str | None, values: GatewayValues, password: str | None
    ) -> tuple[str, Literal["new", "existing"]]:
        """Register a gateway under `gateway_id` (a new id when None), or replace the
        whole configuration of the gateway with that id, password included."""
        if gateway_id is None:
            gateway_id = new_gateway_id()
        _checked("gateway", gateway_id, check_gateway_id)
        checked = _checked_fields(asdict(values))
        change = await self._password_change(gateway_id, password, must_exist=False)
        state = await self._store.gateways.create_or_update(
            gateway_id, GatewayValues(**checked), change
        )
        return gateway_id, state

    async def update(
        self, gateway_id: str, fields: Mapping[str, Any], password: PasswordChange = KEEP_PASSWORD
    ) -> None:
        """Change only the fields named (`user` None removes the login name) and the
        password (None removes it, `KEEP_PASSWORD` leaves it)."""
        checked = _checked_fields(fields)
        if isinstance(password, str):
            password = await self._password_change(gateway_id, password, must_exist=True)
        if not await self._store.gateways.update(gateway_id, checked, password):
            raise not_found()

    async def delete(self, gateway_id: str) -> None:
        if not await self._store.gateways.delete(gateway_id):
            raise not_found()

    async def _password_change(
        self, gateway_id: str, password: str | None, *, must_exist: bool
    ) -> PasswordChange:
        """The change to store for a password sent by the client (see the module
        docstring for the mask); `must_exist`: a missing gateway is a 404."""
        if password is None:
            return None
        if password != MASK:
            return _checked("pass", password, partial(check_text, max_length=MAX_PASSWORD_LENGTH))
        gateway = await self._store.gateways.get(gateway_id)
        if gateway is None and must_exist:
            raise not_found()
        if gateway is None or not gateway.has_password:
            raise InputError(
                '"pass" holds the masked password; send the real value or leave it out',
                key="pass",
            )
        return KEEP_PASSWORD


def _checked_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields with the domain's rules applied (hosts come back normalised)."""
    checked = dict(fields)
    if "host" in checked:
        checked["host"] = _checked("host", checked["host"], check_host)
    if "port" in checked:
        _checked("port", checked["port"], check_port)
    for key, limit in (("name", MAX_NAME_LENGTH), ("user", MAX_USER_LENGTH)):
        if checked.get(key) is not None:
            _checked(key, checked[key], partial(check_text, max_length=limit))
    if "name" in checked and not checked["name"]:
        raise InputError('"name" must not be empty', key="name")
    return checked


def _checked(key: str, value: T, check: Callable[[T], T]) -> T:
    try:
        return check(value)
    except ValueError as exc:
        raise InputError(f'"{key}" {exc}', key=key) from None
