"""Table definitions (SQLAlchemy Core), the single source for queries and migrations.

Conventions: times are integer milliseconds since the epoch (UTC), which sort and
compare the same on SQLite and PostgreSQL; JSON columns hold small documents
(scopes, restrictions); secrets never appear in any table but `secrets`, and
there only as ciphertext (`mailwire.store.cipher`).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: Small instance-wide facts: schema checks, the key verifier, settings later on.
meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

#: Every credential Mailwire holds, encrypted. A row is addressed by the owner's
#: kind (`scope`, e.g. "account"), the owner's id (`ref`) and the field (`name`);
#: the same triple is the ciphertext's associated data, so a value copied into
#: another row does not decrypt there. `key_id` lets rotation find stale rows.
secrets = sa.Table(
    "secrets",
    metadata,
    sa.Column("scope", sa.String(64), primary_key=True),
    sa.Column("ref", sa.String(256), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("key_id", sa.String(16), nullable=False, index=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

#: API access tokens. The token itself is never stored: `id` is its SHA-256.
access_tokens = sa.Table(
    "access_tokens",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("account", sa.String(256), nullable=True, index=True),
    sa.Column("description", sa.String(1024), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("restrictions", sa.JSON, nullable=True),
    sa.Column("permissions", sa.JSON, nullable=True),
    sa.Column("metadata", sa.Text, nullable=True),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("remote_address", sa.String(64), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("last_used_at", sa.BigInteger, nullable=True),
    sa.Column("last_used_ip", sa.String(64), nullable=True),
)

#: Fixed-window request counters for tokens with a rate limit. Kept in the store,
#: not in memory, so that the limit holds across worker processes and nodes.
token_hits = sa.Table(
    "token_hits",
    metadata,
    sa.Column(
        "token_id",
        sa.String(64),
        sa.ForeignKey("access_tokens.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("window_start", sa.BigInteger, primary_key=True),
    sa.Column("hits", sa.Integer, nullable=False),
)

#: An auto-incrementing 64-bit key; SQLite only aliases the rowid for INTEGER.
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: Mailwire processes (one row per `serve` worker process, on every node). A
#: process heartbeats its row; accounts are leased to live processes only, so a
#: process that dies loses its accounts to the others once its lease expires.
nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("host", sa.String(256), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("heartbeat_at", sa.BigInteger, nullable=False, index=True),
    #: Base URL of the node's internal listener (`http://host:port`), where other
    #: nodes forward requests for the accounts it owns; NULL for a node without one.
    sa.Column("address", sa.String(300), nullable=True),
)

#: Mail accounts. `settings` holds the non-secret configuration in the API's own
#: shape (camelCase, as accepted by `POST /v1/account`, minus every password and
#: token, which live in `secrets` under scope "account"). `revision` grows with
#: every change the owning worker must act on (configuration, reconnect), and
#: `sync_seq` with every sync request; the worker compares them with what it saw.
#: `owner`/`lease_expires` say which process runs the account's worker.
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.String(256), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("email", sa.String(512), nullable=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("last_error", sa.JSON, nullable=True),
    sa.Column("notify_from", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False, index=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("sync_time", sa.BigInteger, nullable=True),
    sa.Column("initialized", sa.Boolean, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("sync_seq", sa.Integer, nullable=False),
    sa.Column("owner", sa.String(64), nullable=True, index=True),
    sa.Column("lease_expires", sa.BigInteger, nullable=True),
)

#: Recorded protocol exchange of accounts with `logs: true`: one row per line,
#: already masked, trimmed by count and age per account.
account_logs = sa.Table(
    "account_logs",
    metadata,
    sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    sa.Column(
        "account",
        sa.String(256),
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("src", sa.String(1), nullable=False),
    sa.Column("msg", sa.Text, nullable=False),
    sa.Index("ix_account_logs_account_id", "account", "id"),
)

#: Folders of an account and their sync state (RFC 3501 UIDVALIDITY/UIDNEXT,
#: RFC 7162 HIGHESTMODSEQ). `id` is part of every message id, so a folder that is
#: deleted and recreated gets a new id and old message ids never resolve to it.
mailboxes = sa.Table(
    "mailboxes",
    metadata,
    sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    sa.Column(
        "account",
        sa.String(256),
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("delimiter", sa.String(8), nullable=True),
    sa.Column("name", sa.String(1024), nullable=False),
    sa.Column("parent_path", sa.String(1024), nullable=True),
    sa.Column("special_use", sa.String(32), nullable=True),
    sa.Column("special_use_source", sa.String(16), nullable=True),
    sa.Column("flags", sa.JSON, nullable=False),
    sa.Column("subscribed", sa.Boolean, nullable=False),
    sa.Column("uid_validity", sa.BigInteger, nullable=True),
    sa.Column("uid_next", sa.BigInteger, nullable=True),
    sa.Column("highest_modseq", sa.BigInteger, nullable=True),
    sa.Column("messages", sa.Integer, nullable=False),
    sa.Column("synced_at", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("account", "path"),
)

#: The message index: one row per message per folder, keyed by the folder row and
#: the UID (valid for the folder's `uid_validity`). Envelope fields are columns
#: where lists and searches filter on them, the rest is JSON in the API's shape.
messages = sa.Table(
    "messages",
    metadata,
    sa.Column(
        "mailbox_id",
        _ROW_ID,
        sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("uid", sa.BigInteger, primary_key=True),
    sa.Column("account", sa.String(256), nullable=False),
    sa.Column("email_id", sa.String(128), nullable=True),
    sa.Column("thread_id", sa.String(128), nullable=True),
    sa.Column("modseq", sa.BigInteger, nullable=True),
    sa.Column("flags", sa.JSON, nullable=False),
    sa.Column("labels", sa.JSON, nullable=True),
    sa.Column("internal_date", sa.BigInteger, nullable=True),
    sa.Column("date", sa.BigInteger, nullable=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("subject", sa.Text, nullable=True),
    sa.Column("from_address", sa.String(512), nullable=True),
    sa.Column("message_id", sa.String(998), nullable=True),
    sa.Column("in_reply_to", sa.Text, nullable=True),
    sa.Column("references", sa.Text, nullable=True),
    sa.Column("envelope", sa.JSON, nullable=False),
    sa.Column("structure", sa.JSON, nullable=True),
    sa.Column("indexed_at", sa.BigInteger, nullable=False),
    sa.Index("ix_messages_account_internal_date", "account", "internal_date"),
    sa.Index("ix_messages_account_message_id", "account", "message_id"),
)

#: The transactional outbox: each detected change appends its event here in the
#: same transaction as the index update, so an event exists exactly when the
#: change it reports was recorded. `seq` orders events; consumers (the change
#: stream, the webhook relay) remember the last `seq` they handled. `account` has
#: no foreign key: `accountDeleted` outlives its account.
events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", _ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("account", sa.String(256), nullable=False, index=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("path", sa.String(1024), nullable=True),
    sa.Column("special_use", sa.String(32), nullable=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False, index=True),
)

#: Instance-wide settings (`/v1/settings`), one row per key, the value in the
#: API's own JSON shape. Secret settings (`serviceSecret`) live in `secrets`.
settings = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

#: Custom webhook routes: a target, headers and the filter/map functions that
#: pick and reshape the events sent there. `version` grows with every edit,
#: `match_count` with every event the filter accepted; `error` is the latest
#: failure (cleared by a success) and `error_log` the last few, newest first.
webhook_routes = sa.Table(
    "webhook_routes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("description", sa.String(1024), nullable=True),
    sa.Column("target_url", sa.String(2048), nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("custom_headers", sa.JSON, nullable=False),
    sa.Column("filter_fn", sa.Text, nullable=True),
    sa.Column("map_fn", sa.Text, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("match_count", sa.BigInteger, nullable=False),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("error_log", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

#: Message templates (`/v1/templates`): `account` NULL for templates every account
#: may use. `content` holds subject, text, html and previewText (Handlebars sources).
templates = sa.Table(
    "templates",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("account", sa.String(256), nullable=True, index=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("description", sa.String(1024), nullable=True),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("content", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

#: SMTP gateways (`/v1/gateway`): a send may go through one instead of the
#: account's own SMTP server. The password lives encrypted in `secrets`
#: (scope "gateway", ref = the gateway id), never here.
gateways = sa.Table(
    "gateways",
    metadata,
    sa.Column("id", sa.String(256), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("secure", sa.Boolean, nullable=False),
    sa.Column("user", sa.String(1024), nullable=True),
    sa.Column("deliveries", sa.BigInteger, nullable=False),
    sa.Column("last_use", sa.BigInteger, nullable=True),
    sa.Column("last_error", sa.JSON, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

#: Queued outgoing messages (`/v1/outbox`): the built message and its envelope,
#: one `submit` job each. `state`: queued -> sending (an attempt is talking to the
#: server) -> sent / failed / cancelled. Finished rows stay a day for the answers of
#: repeated submits with the same Idempotency-Key, then are pruned.
send_queue = sa.Table(
    "send_queue",
    metadata,
    sa.Column("queue_id", sa.String(32), primary_key=True),
    sa.Column("account", sa.String(256), nullable=False),
    sa.Column("message_id", sa.String(1000), nullable=False),
    sa.Column("subject", sa.Text, nullable=True),
    sa.Column("envelope", sa.JSON, nullable=False),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("gateway", sa.String(256), nullable=True),
    sa.Column("idempotency_key", sa.String(1024), nullable=True),
    sa.Column("request_hash", sa.String(64), nullable=True),
    sa.Column("answer", sa.JSON, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("progress", sa.JSON, nullable=True),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("send_at", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("finished_at", sa.BigInteger, nullable=True),
    sa.Index("ix_send_queue_account_state", "account", "state"),
    sa.Index("ix_send_queue_state_created", "state", "created_at"),
    sa.Index("ux_send_queue_account_idempotency_key", "account", "idempotency_key", unique=True),
)

#: Durable jobs (webhook deliveries now; sends and exports later). A job runs
#: when `state` is waiting and `run_at` has passed. Per-key order lives in the
#: rows: only the oldest unfinished job of an `ordering_key` is waiting/active,
#: later ones are stored as `blocked` and promoted when it ends (`store.jobs`).
#: `owner`/`lease_expires` mark a claimed job; a lease that expires returns the
#: job to its queue. `dedupe_key` makes producing a job idempotent (e.g. one
#: delivery per event and route).
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("queue", sa.String(32), nullable=False),
    sa.Column("ordering_key", sa.String(600), nullable=True),
    sa.Column("dedupe_key", sa.String(200), nullable=True, unique=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("attempts_made", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("run_at", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("finished_at", sa.BigInteger, nullable=True),
    sa.Column("owner", sa.String(64), nullable=True),
    sa.Column("lease_expires", sa.BigInteger, nullable=True),
    sa.Column("last_error", sa.JSON, nullable=True),
    sa.Index("ix_jobs_queue_state_run_at", "queue", "state", "run_at"),
    sa.Index("ix_jobs_queue_ordering_key_state_id", "queue", "ordering_key", "state", "id"),
)

#: Per-queue controls (`/v1/settings/queue/{queue}`): paused, and how many jobs
#: of the queue each process runs at once. A queue without a row uses defaults.
queues = sa.Table(
    "queues",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("concurrency", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)
