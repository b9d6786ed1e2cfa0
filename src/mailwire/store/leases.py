"""Which process runs which account: node registration, heartbeats and account leases.

Theory of operation. Every `serve` process registers a row in `nodes` and
heartbeats it; a node is live while its heartbeat is younger than
`NODE_TTL_MS`. Accounts are leased: `owner` names the node and
`lease_expires` says until when. An owner renews its leases well before they
expire; a node that dies stops renewing and, once its leases expire, the
others take its accounts. A node also records the base URL of its internal
listener (`address`): a request for an account owned elsewhere is forwarded
there (`owner_of`, used by `api.forwarding`).

Each node aims at its fair share, ceil(accounts / live nodes). It claims
unowned or expired accounts up to that share and gives back what it holds
above it, so a node that joins gets its part within a few rounds. Every
change of ownership is one conditional UPDATE (`WHERE owner IS NULL OR
lease_expires < now`): on SQLite writers are serialised by `BEGIN
IMMEDIATE`, and on PostgreSQL an UPDATE re-checks its WHERE clause on the
row it waited for, so two nodes can never both win one account.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from mailwire.domain.accounts import Account, AccountState
from mailwire.store.accounts import account_from_row
from mailwire.store.database import Database
from mailwire.store.schema import accounts, nodes
from mailwire.types import Clock, now_ms

#: A node whose heartbeat is older than this is dead (ms).
NODE_TTL_MS = 30_000
#: How long a lease lasts without renewal (ms); owners renew every round.
LEASE_TTL_MS = 60_000
#: Node rows dead for this long are deleted (ms); kept a while for inspection.
NODE_FORGET_MS = 10 * NODE_TTL_MS
#: Accounts claimed in one round at most, so one round stays a short transaction.
MAX_CLAIM_PER_ROUND = 500


@dataclass(frozen=True, slots=True)
class Owner:
    """Who holds an account's lease, and where to reach it (None: it has no listener)."""

    node: str
    address: str | None


#: States that say a connection is open or opening.
_CONNECTION_STATES = (
    str(AccountState.CONNECTING),
    str(AccountState.SYNCING),
    str(AccountState.CONNECTED),
)


class LeaseStore:
    """Nodes and account leases; see the module docstring."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock = now_ms,
        node_ttl_ms: int = NODE_TTL_MS,
        lease_ttl_ms: int = LEASE_TTL_MS,
    ) -> None:
        self._db = database
        self._clock = clock
        self.node_ttl_ms = node_ttl_ms
        self.lease_ttl_ms = lease_ttl_ms

    # ------------------------------------------------------------------ nodes

    async def register(self, node: str, *, host: str, pid: int, address: str | None = None) -> None:
        """Add `node`'s row; `address` is where other nodes forward its accounts' requests."""
        now = self._clock()
        row = {"id": node, "host": host, "pid": pid, "started_at": now, "heartbeat_at": now}
        async with self._db.write() as conn:
            await conn.execute(nodes.insert().values(address=address, **row))

    async def heartbeat(self, node: str) -> None:
        """Mark `node` alive (re-registering it if it was forgotten) and forget long-dead nodes."""
        now = self._clock()
        async with self._db.write() as conn:
            result = await conn.execute(
                nodes.update().where(nodes.c.id == node).values(heartbeat_at=now)
            )
            if result.rowcount == 0:
                raise LookupError(f"node {node} is not registered")
            await conn.execute(nodes.delete().where(nodes.c.heartbeat_at < now - NODE_FORGET_MS))

    async def unregister(self, node: str) -> None:
        """Give back every lease of `node` and delete its row."""
        async with self._db.write() as conn:
            await conn.execute(_release(node))
            await conn.execute(nodes.delete().where(nodes.c.id == node))

    async def live_nodes(self) -> int:
        statement = sa.select(sa.func.count()).where(
            nodes.c.heartbeat_at >= self._clock() - self.node_ttl_ms
        )
        async with self._db.read() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def fair_share(self) -> int:
        """ceil(accounts / live nodes): how many accounts one node should run."""
        since = self._clock() - self.node_ttl_ms
        async with self._db.read() as conn:
            total = (await conn.execute(sa.select(sa.func.count()).select_from(accounts))).scalar()
            live = (
                await conn.execute(sa.select(sa.func.count()).where(nodes.c.heartbeat_at >= since))
            ).scalar()
        return math.ceil(int(total or 0) / max(1, int(live or 0)))

    # ------------------------------------------------------------------ leases

    async def claim(self, node: str, limit: int) -> list[str]:
        """Take up to `limit` unowned or expired accounts; returns the ids won."""
        limit = min(limit, MAX_CLAIM_PER_ROUND)
        if limit <= 0:
            return []
        now = self._clock()
        free = sa.or_(accounts.c.owner.is_(None), accounts.c.lease_expires < now)
        candidates = (
            sa.select(accounts.c.id).where(free).order_by(accounts.c.created_at).limit(limit)
        )
        won: list[str] = []
        async with self._db.write() as conn:
            for account_id in (await conn.execute(candidates)).scalars().all():
                result = await conn.execute(
                    accounts.update()
                    .where(accounts.c.id == account_id, free)
                    .values(owner=node, lease_expires=now + self.lease_ttl_ms)
                )
                if result.rowcount == 1:
                    won.append(account_id)
        return won

    async def renew(self, node: str) -> int:
        """Extend every lease `node` holds; returns how many."""
        now = self._clock()
        async with self._db.write() as conn:
            result = await conn.execute(
                accounts.update()
                .where(accounts.c.owner == node)
                .values(lease_expires=now + self.lease_ttl_ms)
            )
        return result.rowcount

    async def release(self, node: str, account_ids: Iterable[str] | None = None) -> int:
        """Give back the named leases of `node` (all of them when None).

        Accounts whose state says connected (or connecting, syncing) become
        `disconnected`: the caller has closed their connections.
        """
        async with self._db.write() as conn:
            result = await conn.execute(_release(node, account_ids))
        return result.rowcount

    async def owner_of(self, account_id: str) -> Owner | None:
        """The node holding an unexpired lease on the account, with its address; else None.

        None covers an unknown account, one not leased yet and one whose lease
        ran out (its owner died or stalled; another node will take it over).
        """
        statement = (
            sa.select(accounts.c.owner, nodes.c.address)
            .select_from(accounts.outerjoin(nodes, nodes.c.id == accounts.c.owner))
            .where(
                accounts.c.id == account_id,
                accounts.c.owner.is_not(None),
                accounts.c.lease_expires >= self._clock(),
            )
        )
        async with self._db.read() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else Owner(node=row.owner, address=row.address)

    async def list_owned(self, node: str) -> list[Account]:
        """The accounts `node` holds a lease on (expired leases included until taken)."""
        statement = (
            accounts.select().where(accounts.c.owner == node).order_by(accounts.c.created_at)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(statement)).all()
        return [account_from_row(row._mapping) for row in rows]


def _release(node: str, account_ids: Iterable[str] | None = None) -> sa.Update:
    # A released account has no connection until its next owner opens one, so a
    # state that claims one becomes `disconnected`; error states stay as they are.
    statement = accounts.update().where(accounts.c.owner == node)
    if account_ids is not None:
        statement = statement.where(accounts.c.id.in_(list(account_ids)))
    state = sa.case(
        (accounts.c.state.in_(_CONNECTION_STATES), str(AccountState.DISCONNECTED)),
        else_=accounts.c.state,
    )
    return statement.values(owner=None, lease_expires=None, state=state)
