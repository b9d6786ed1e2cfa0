"""Opening the store: connect, migrate, establish the keys, and refuse what is unsafe.

`open_store` is the one way in. It refuses to start (with one clear line) when
the data directory cannot be used, when the database cannot be reached, and
when the configured secret cannot decrypt data that is already stored:
Mailwire never re-keys silently, because a fresh key would orphan every stored
credential.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from mailwire.config import Settings
from mailwire.errors import DataDirError, DecryptionError, SecretMismatchError, StoreError
from mailwire.store.account_logs import AccountLogStore
from mailwire.store.accounts import AccountStore
from mailwire.store.cipher import Keyring, generate_secret
from mailwire.store.database import Database, describe_error, open_database, prepare_data_dir
from mailwire.store.gateways import GatewayStore
from mailwire.store.index import IndexStore
from mailwire.store.index_search import IndexSearch
from mailwire.store.jobs import JobStore
from mailwire.store.keys import KeySource
from mailwire.store.migrate import migrate
from mailwire.store.outbox import OutboxStore
from mailwire.store.schema import secrets as secrets_table
from mailwire.store.secret_file import SECRET_FILE_NAME, read_secret_file, write_secret_file
from mailwire.store.secrets import SecretStore
from mailwire.store.send_queue import SendQueueStore
from mailwire.store.settings import SettingsStore
from mailwire.store.templates import TemplateStore
from mailwire.store.tokens import TokenStore
from mailwire.store.webhook_routes import WebhookRouteStore
from mailwire.types import Clock, now_ms

#: A known value stored like any other secret: if it decrypts, the key is right.
KEY_CHECK = ("mailwire", "keyring", "check")
KEY_CHECK_TEXT = "mailwire key check v1"


@dataclass(slots=True)
class Store:
    database: Database
    keys: KeySource
    secrets: SecretStore
    tokens: TokenStore
    outbox: OutboxStore
    index: IndexStore
    accounts: AccountStore
    account_logs: AccountLogStore
    #: Searches of the message index (`POST /search`).
    search: IndexSearch
    #: Durable jobs and queue controls (webhook deliveries).
    jobs: JobStore
    webhook_routes: WebhookRouteStore
    #: Instance-wide settings (`/v1/settings`).
    settings: SettingsStore
    #: SMTP gateways (`/v1/gateway`); their passwords live in `secrets`.
    gateways: GatewayStore
    #: Message templates (`/v1/templates`).
    templates: TemplateStore
    #: Outgoing messages waiting for delivery (`/v1/outbox`).
    send_queue: SendQueueStore

    async def ping(self) -> float:
        return await self.database.ping()

    async def close(self) -> None:
        await self.database.close()


async def open_store(settings: Settings, *, clock: Clock = now_ms) -> Store:
    """Connect, apply migrations, load and verify the keys."""
    database = await open_database(
        settings.resolved_database_url,
        schema=settings.database_schema,
        data_dir=settings.data_dir if settings.uses_sqlite else None,
    )
    try:
        await _migrate(database, settings)
        keys = await _establish_keys(database, settings)
        secrets = SecretStore(database, keys, now=clock)
        await _verify_keys(secrets, keys)
    except BaseException:
        await database.close()
        raise
    jobs = JobStore(database, clock=clock)
    return Store(
        database=database,
        keys=keys,
        secrets=secrets,
        tokens=TokenStore(database),
        outbox=OutboxStore(database, clock=clock),
        index=IndexStore(database, clock=clock),
        accounts=AccountStore(database, secrets, keys, clock=clock),
        account_logs=AccountLogStore(database, clock=clock),
        search=IndexSearch(database),
        jobs=jobs,
        webhook_routes=WebhookRouteStore(database, clock=clock),
        settings=SettingsStore(database, secrets, clock=clock),
        gateways=GatewayStore(database, keys, clock=clock),
        templates=TemplateStore(database, clock=clock),
        send_queue=SendQueueStore(database, jobs, clock=clock),
    )


async def _migrate(database: Database, settings: Settings) -> None:
    try:
        await migrate(database)
    except (SQLAlchemyError, StoreError) as exc:
        if database.is_sqlite:
            raise DataDirError(
                f"the database in {settings.data_dir} cannot be used: {describe_error(exc)}"
            ) from None
        raise StoreError(f"cannot migrate the database: {describe_error(exc)}") from None


async def _establish_keys(database: Database, settings: Settings) -> KeySource:
    previous = tuple(secret.get_secret_value() for secret in settings.previous_secrets)
    if settings.secret is not None:
        keyring = Keyring.from_secrets(settings.secret.get_secret_value(), previous)
        return KeySource(keyring, previous=previous)
    path = settings.data_dir / SECRET_FILE_NAME
    if read_secret_file(path) is None:
        if await _has_key_check(database):
            raise SecretMismatchError(
                f"the database holds encrypted data but {path} is missing and MAILWIRE_SECRET "
                "is not set: restore the secret file or set MAILWIRE_SECRET"
            )
        prepare_data_dir(settings.data_dir)
        write_secret_file(path, [generate_secret()])
    return KeySource.from_file(path, previous=previous)


async def _has_key_check(database: Database) -> bool:
    scope, ref, name = KEY_CHECK
    statement = sa.select(sa.func.count()).where(
        secrets_table.c.scope == scope, secrets_table.c.ref == ref, secrets_table.c.name == name
    )
    async with database.read() as conn:
        return bool((await conn.execute(statement)).scalar_one())


async def _verify_keys(secrets: SecretStore, keys: KeySource) -> None:
    # Insert-if-absent, then read back: two nodes starting on an empty database
    # with different secrets must not both succeed.
    await secrets.put(*KEY_CHECK, KEY_CHECK_TEXT, replace=False)
    try:
        stored = await secrets.get(*KEY_CHECK)
    except DecryptionError:
        stored = None
    if stored != KEY_CHECK_TEXT:
        known = ", ".join(keys.current().key_ids)
        raise SecretMismatchError(
            "the configured secret cannot decrypt the data already stored "
            f"(configured key ids: {known}); set MAILWIRE_SECRET to the secret the data was "
            "written with, or list it in MAILWIRE_PREVIOUS_SECRETS; refusing to start "
            "rather than re-keying"
        )
