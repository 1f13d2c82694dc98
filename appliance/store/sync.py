"""Owns replica sync: users, templates and access rules down by change number, events up by UUID."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from appliance.config import Config

from .db import Database
from .models import AccessEvent, Device, FaceTemplate, User, utcnow
from .models_policies import GuestCode, GuestUse, GuestUseTotal, Holiday, ScheduleWindow
from .models_sync import SyncSeq, SyncState, SyncTombstone, UserAccess

log = logging.getLogger(__name__)

USERS: Table = User.__table__  # type: ignore[assignment]
TEMPLATES: Table = FaceTemplate.__table__  # type: ignore[assignment]
ACCESS: Table = UserAccess.__table__  # type: ignore[assignment]
TOMBSTONES: Table = SyncTombstone.__table__  # type: ignore[assignment]
EVENTS: Table = AccessEvent.__table__  # type: ignore[assignment]
DEVICES: Table = Device.__table__  # type: ignore[assignment]
SEQ: Table = SyncSeq.__table__  # type: ignore[assignment]
STATE: Table = SyncState.__table__  # type: ignore[assignment]
GUESTS: Table = GuestCode.__table__  # type: ignore[assignment]
WINDOWS: Table = ScheduleWindow.__table__  # type: ignore[assignment]
HOLIDAYS: Table = Holiday.__table__  # type: ignore[assignment]
USES: Table = GuestUse.__table__  # type: ignore[assignment]
TOTALS: Table = GuestUseTotal.__table__  # type: ignore[assignment]

# pulled tables in the order a batch is applied (parents first), then tombstones
PULLED: tuple[Table, ...] = (USERS, TEMPLATES, ACCESS, GUESTS, WINDOWS, HOLIDAYS)
# What a door reads of a user: everything but the contact details, which it never needs (the
# MySQL bootstrap grants doors SELECT on exactly these columns of `users`).
USER_PRIVATE_COLUMNS = frozenset({"email", "phone"})
DOOR_USER_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in USERS.columns if c.name not in USER_PRIVATE_COLUMNS
)


def _pull_select(t: Table) -> Any:
    if t is USERS:
        return select(*(USERS.c[n] for n in DOOR_USER_COLUMNS))
    return select(t)


BY_NAME = {t.name: t for t in PULLED}
# A replica is compared with the central database as a whole (per table: rows, sum of change
# numbers and a sum of id * change number modulo this prime) whenever the central head moved,
# on the worker's first round and at least every VERIFY_EVERY_S: rows the central database no
# longer has at their version (a restore from a backup followed by new edits) force a reload.
DIGEST_PRIME = 2_147_483_647
VERIFY_EVERY_S = 300.0
# MySQL deadlock / lock wait timeout: the transaction was rolled back and may simply be retried
RETRYABLE = (1213, 1205)
RETRIES = 4


class SyncError(RuntimeError):
    """Sync cannot run as configured (e.g. the replica is the central database itself)."""


@dataclass
class SyncReport:
    """What one sync round did. `ok` is False when either direction failed (see `error`)."""

    ok: bool = True
    pulled: dict[str, int] = field(default_factory=lambda: {t.name: 0 for t in PULLED})
    deleted: int = 0
    pushed: int = 0
    duplicates: int = 0
    guest_uses_pushed: int = 0
    pending: int = 0
    cursor: int = 0
    reset: bool = False
    ms: float = 0.0
    error: str | None = None

    @property
    def changed(self) -> bool:
        return bool(sum(self.pulled.values()) or self.deleted or self.pushed or self.reset)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- device-local state -----------------------------------------------------------------------
def _state(conn: Connection) -> dict[str, str]:
    return {k: v for k, v in conn.execute(select(STATE.c.key, STATE.c.value))}


def _set_state(conn: Connection, **values: Any) -> None:
    rows = [{"key": k, "value": "" if v is None else str(v)} for k, v in values.items()]
    stmt = sqlite_insert(STATE)
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value}),
        rows,
    )


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds")


def sync_status(replica: Database, now: datetime | None = None) -> dict[str, Any]:
    """The replica's sync state for the admin page and `doorward sync --status`.

    lag_s is the time since the last round that completed in both directions (None: never),
    pending_events the events still waiting for the central database.
    """
    now = now or utcnow()
    with replica.engine.connect() as conn:
        state = _state(conn)
        pending = conn.execute(
            select(func.count()).select_from(EVENTS).where(EVENTS.c.synced_at.is_(None))
        ).scalar_one()
    last_ok = state.get("last_ok_at") or None
    lag = None
    if last_ok:
        lag = max(0.0, (now - datetime.fromisoformat(last_ok)).total_seconds())
    return {
        "cursor": int(state.get("cursor") or 0),
        "last_ok_at": last_ok,
        "last_attempt_at": state.get("last_attempt_at") or None,
        "last_error": state.get("last_error") or None,
        "pending_events": int(pending),
        "lag_s": None if lag is None else round(lag, 1),
    }


def sync_lag_s(replica: Database, now: datetime | None = None) -> float | None:
    """Seconds since the replica last synced completely with the central database."""
    return sync_status(replica, now)["lag_s"]


# ---- dialect helpers ---------------------------------------------------------------------------
def _insert_ignoring_duplicates(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    """INSERT rows; a row whose primary key already exists is left untouched (no error)."""
    pk = [c.name for c in table.primary_key.columns]
    if conn.dialect.name in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        stmt = mysql_insert(table)
        conn.execute(stmt.on_duplicate_key_update({pk[0]: stmt.inserted[pk[0]]}), rows)
    elif conn.dialect.name == "sqlite":
        conn.execute(sqlite_insert(table).on_conflict_do_nothing(index_elements=pk), rows)
    else:  # pragma: no cover - other servers: plain insert of rows checked absent just before
        conn.execute(insert(table), rows)


def _upsert(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keep: Sequence[str] = ()
) -> None:
    """INSERT rows, or UPDATE every column but the key and `keep` where the key exists."""
    pk = [c.name for c in table.primary_key.columns]
    cols = [c for c in rows[0] if c not in pk and c not in keep]
    if conn.dialect.name in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        mine = mysql_insert(table)
        conn.execute(mine.on_duplicate_key_update({c: mine.inserted[c] for c in cols}), rows)
    else:
        lite = sqlite_insert(table)
        conn.execute(
            lite.on_conflict_do_update(index_elements=pk, set_={c: lite.excluded[c] for c in cols}),
            rows,
        )


# ---- restore detection ------------------------------------------------------------------------
def _head(c: Connection) -> int:
    return int(c.execute(select(SEQ.c.value).where(SEQ.c.id == 1)).scalar() or 0)


def _last_change(batch: dict[str, list[dict[str, Any]]], version: int) -> str | None:
    """The identity of the change numbered `version` in `batch` (the last one it applies),
    as JSON for sync_state: a row {"table", "id", "version"}, or a tombstone {"table":
    "sync_tombstones", "of", "id", "version"}."""
    for t in PULLED:
        for row in batch.get(t.name) or ():
            if row["version"] == version:
                anchor = {"table": t.name, "id": row["id"], "version": version}
                if "user_id" in row:  # deleted along with its user (ON DELETE CASCADE)
                    anchor["user"] = row["user_id"]
                return json.dumps(anchor)
    for stone in batch.get(TOMBSTONES.name) or ():
        if stone["version"] == version:
            return json.dumps(
                {"table": TOMBSTONES.name, "of": stone["table_name"], "id": stone["row_id"],
                 "version": version}
            )  # fmt: skip
    return None


def _load_anchor(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        anchor = json.loads(text)
    except ValueError:
        return None
    return anchor if isinstance(anchor, dict) else None


def _anchor_holds(c: Connection, anchor: dict[str, Any]) -> bool:
    """Whether the central database still has the last change this replica applied: the row
    at that version or a later one (the next batch brings it), deleted by a later tombstone
    (its own, or its user's for a template or access rule, deleted by cascade), or the very
    tombstone. Not so after a restore from a backup older than that change."""
    version = int(anchor["version"])
    if anchor["table"] == TOMBSTONES.name:
        found = c.execute(
            select(TOMBSTONES.c.version).where(
                TOMBSTONES.c.version == version,
                TOMBSTONES.c.table_name == anchor["of"],
                TOMBSTONES.c.row_id == anchor["id"],
            )
        ).first()
        return found is not None
    table = BY_NAME.get(anchor["table"])
    if table is None:
        return False
    now = c.execute(select(table.c.version).where(table.c.id == anchor["id"])).scalar()
    if now is not None:
        return int(now) >= version
    gone = (TOMBSTONES.c.table_name == table.name) & (TOMBSTONES.c.row_id == anchor["id"])
    if anchor.get("user") is not None:  # a template or access rule: or its user was deleted
        gone |= (TOMBSTONES.c.table_name == USERS.name) & (TOMBSTONES.c.row_id == anchor["user"])
    later = c.execute(
        select(TOMBSTONES.c.version).where(gone, TOMBSTONES.c.version > version).limit(1)
    ).first()
    return later is not None


def _digest(conn: Connection) -> dict[str, tuple[int, int, int]]:
    """Per synced table: rows, sum of versions, sum of (id * version mod DIGEST_PRIME) (only
    columns a door may read). Equal on both sides when the replica holds exactly the central
    rows at their versions."""
    out: dict[str, tuple[int, int, int]] = {}
    p = DIGEST_PRIME  # each factor below p: the product fits in 62 bits
    for t in PULLED:
        n, total, mixed = conn.execute(
            select(
                func.count(t.c.id),
                func.coalesce(func.sum(t.c.version), 0),
                func.coalesce(func.sum(t.c.id % p * (t.c.version % p) % p), 0),
            )
        ).one()
        out[t.name] = (int(n), int(total), int(mixed))
    return out


# ---- the worker --------------------------------------------------------------------------------
class SyncWorker:
    """Keeps one door's replica in step with the central database.

    Down: rows of users, face_templates and user_access whose change number is above the
    replica's cursor, and tombstones of deleted rows, applied in change order in batches (each
    batch one replica transaction, cursor included). Up: access events not yet confirmed,
    inserted centrally by their UUID (an existing UUID is a no-op), marked locally only after
    the central commit, so a crash anywhere repeats work but never duplicates or loses an event.
    Snapshots travel as references: the event's device_id plus its data-dir-relative path.

    A central database restored from an older backup is noticed, and the replica reloaded
    whole, when its change counter is behind the cursor, when the last change the replica
    applied (sync_state `anchor`) is no longer there at that version or a later one, or when
    the replica, once caught up, does not hold exactly the central rows at their versions
    (`_digest`, compared on the worker's first round, whenever the central head moved and at
    least every VERIFY_EVERY_S): edits after the restore may bring the counter back past the
    cursor, reusing change numbers the replica has already seen.
    """

    def __init__(
        self,
        config: Config,
        central: Database,
        replica: Database,
        *,
        interval_s: float | None = None,
        batch_size: int | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if central.engine.url == replica.engine.url:
            raise SyncError("the replica is the central database itself: nothing to sync")
        if replica.engine.dialect.name != "sqlite":
            raise SyncError(f"the replica must be a SQLite file, got {replica.url}")
        self.config = config
        self.central = central
        self.replica = replica
        self.device_id = config.device.id
        self.interval_s = interval_s if interval_s is not None else config.sync.interval_s
        self.batch_size = batch_size or config.sync.batch_size
        self.clock = clock
        self.last_report: SyncReport | None = None
        self.owns_central = False  # set by start_sync_worker: stop() then closes it
        self._round = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._was_ok: bool | None = None
        # the central head at the last whole-replica comparison (None: not yet this process)
        self._verified_head: int | None = None
        self._verified_at = 0.0

    # -- one round ---------------------------------------------------------------------------
    def run_once(self) -> SyncReport:
        """Pull, then push; never raises for an unreachable server (see report.error)."""
        with self._round:
            report = SyncReport()
            t0 = time.perf_counter()
            errors: list[str] = []
            for step in (self._pull, self._push):
                try:
                    step(report)
                except SQLAlchemyError as exc:
                    errors.append(f"{step.__name__.strip('_')}: {short_error(exc)}")
                    if _unreachable(exc):
                        # the server does not answer: the next step would wait out the same
                        # timeouts again, so a round is bounded by connect + io timeout once
                        break
            if not errors:
                try:
                    self._heartbeat()
                except SQLAlchemyError as exc:
                    errors.append(f"heartbeat: {short_error(exc)}")
            report.ms = round((time.perf_counter() - t0) * 1000, 1)
            report.ok = not errors
            report.error = "; ".join(errors) or None
            self._record(report)
            self.last_report = report
            return report

    def _record(self, report: SyncReport) -> None:
        now = _iso(self.clock())
        values: dict[str, Any] = {"last_attempt_at": now, "last_error": report.error}
        if report.ok:
            values["last_ok_at"] = now
        with self.replica.engine.begin() as r:
            _set_state(r, **values)
            report.pending = r.execute(
                select(func.count()).select_from(EVENTS).where(EVENTS.c.synced_at.is_(None))
            ).scalar_one()
        level = logging.INFO if (report.changed or report.ok != self._was_ok) else logging.DEBUG
        if not report.ok:
            level = logging.WARNING if self._was_ok is not False else logging.DEBUG
        log.log(
            level,
            "event=sync ok=%d users=%d templates=%d access=%d deleted=%d pushed=%d dup=%d "
            "pending=%d cursor=%d ms=%.0f error=%r",
            report.ok,
            report.pulled["users"],
            report.pulled["face_templates"],
            report.pulled["user_access"],
            report.deleted,
            report.pushed,
            report.duplicates,
            report.pending,
            report.cursor,
            report.ms,
            report.error,
        )
        self._was_ok = report.ok

    # -- down ---------------------------------------------------------------------------------
    def _pull(self, report: SyncReport) -> None:
        with self.replica.engine.connect() as r:
            state = _state(r)
        cursor = int(state.get("cursor") or 0)
        anchor = _load_anchor(state.get("anchor"))
        with self.central.engine.begin() as c:
            head = _head(c)
            # the central database was restored from an older backup (or rebuilt): its counter
            # is behind the cursor, or the last change this replica applied is not there
            why = "behind" if head < cursor else None
            if why is None and anchor is not None and not _anchor_holds(c, anchor):
                why = "anchor_gone"
        if why is not None:
            self._reset(report, why, cursor=cursor, head=head, anchor=anchor)
            return
        verify = (
            self._verified_head != head or time.monotonic() - self._verified_at >= VERIFY_EVERY_S
        )
        same, seen_head = True, head
        while True:
            with self.central.engine.begin() as c, self.replica.engine.connect() as r0:
                # one consistent central snapshot per batch
                batch, new_cursor = self._fetch(c, cursor, r0)
                if not batch and verify:
                    # caught up in this snapshot: the replica must now hold exactly its rows
                    seen_head = _head(c)
                    same = _digest(c) == _digest(r0)
            if not batch:
                break
            with self.replica.engine.begin() as r:
                self._apply(r, batch, report)
                last = _last_change(batch, new_cursor)
                _set_state(r, cursor=new_cursor, **({"anchor": last} if last else {}))
                self._stamp(r, new_cursor)
            cursor = new_cursor
        report.cursor = cursor
        if not same:
            self._reset(report, "diverged", cursor=cursor, head=seen_head, anchor=anchor)
        elif verify:
            self._verified_head, self._verified_at = seen_head, time.monotonic()

    def _reset(self, report: SyncReport, why: str, **facts: Any) -> None:
        log.warning(
            "event=sync_reset reason=%s %s",
            why,
            " ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in facts.items()),
        )
        report.reset = True
        self._full_reload(report)

    def _fetch(
        self, c: Connection, cursor: int, r: Connection | None
    ) -> tuple[dict[str, list[dict[str, Any]]], int]:
        """The next batch_size changes above `cursor` across all tables, in change order.

        First the change numbers alone (index-only), to find where the batch ends; then the
        rows up to there, so no row is sent twice. A template or access rule whose user was
        changed later (so its row is in a later batch) and is not yet in the replica (`r`)
        brings that user's current row along, from the same snapshot. With no replica (`r`
        None: a full reload, whose batches all come from one snapshot) nothing is brought along.
        """
        n = self.batch_size
        tables = (*PULLED, TOMBSTONES)
        versions: list[int] = []
        for t in tables:
            versions += c.execute(
                select(t.c.version).where(t.c.version > cursor).order_by(t.c.version).limit(n)
            ).scalars()
        if not versions:
            return {}, cursor
        upto = sorted(versions)[min(n, len(versions)) - 1]
        fetched = {
            t.name: [
                dict(m)
                for m in c.execute(
                    _pull_select(t)
                    .where(t.c.version > cursor, t.c.version <= upto)
                    .order_by(t.c.version)
                ).mappings()
            ]
            for t in tables
        }
        if r is None:
            return fetched, upto
        wanted = {row["user_id"] for t in (TEMPLATES, ACCESS) for row in fetched[t.name]}
        wanted -= {row["id"] for row in fetched["users"]}
        if wanted:
            wanted -= set(r.execute(select(USERS.c.id).where(USERS.c.id.in_(wanted))).scalars())
        if wanted:
            fetched["users"] += [
                dict(m)
                for m in c.execute(_pull_select(USERS).where(USERS.c.id.in_(wanted))).mappings()
            ]
        return fetched, upto

    def _apply(
        self, r: Connection, batch: dict[str, list[dict[str, Any]]], report: SyncReport
    ) -> None:
        r.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        users = batch.get("users") or []
        if users:
            # a user number may move between users (or be reused after a delete) within one
            # batch: park the replica's current holder on a negative number until its own
            # change arrives (a number below 1 never matches a keypad code)
            r.execute(
                update(USERS)
                .where(USERS.c.number == bindparam("number"), USERS.c.id != bindparam("row_id"))
                .values(number=-USERS.c.id),
                [{"number": u["number"], "row_id": u["id"]} for u in users],
            )
        for t in PULLED:
            rows = batch.get(t.name) or []
            if rows:
                _upsert(r, t, rows)
                report.pulled[t.name] += len(rows)
        for stone in sorted(batch.get("sync_tombstones") or [], key=lambda s: s["version"]):
            table = BY_NAME.get(stone["table_name"])
            if table is None:
                log.warning("event=sync_unknown_tombstone table=%s", stone["table_name"])
                continue
            r.execute(delete(table).where(table.c.id == stone["row_id"]))
            report.deleted += 1

    def _stamp(self, r: Connection, value: int) -> None:
        """The replica's own sequence follows the cursor: TemplateCache's change stamp."""
        _upsert(r, SEQ, [{"id": 1, "value": value}])

    def _full_reload(self, report: SyncReport) -> None:
        """Replace every synced row in one replica transaction (never seen half done).

        The central state is read first, batch by batch but from one consistent snapshot (one
        central transaction), into memory; only then is the replica written, in one short
        transaction with no network round trip inside it, so the door's own writes (events,
        guest uses) never wait out the busy timeout behind a slow central link.
        """
        rows: dict[str, dict[int, dict[str, Any]]] = {t.name: {} for t in PULLED}
        cursor = 0
        last: str | None = None
        with self.central.engine.begin() as c:
            head = _head(c)
            while True:
                batch, new_cursor = self._fetch(c, cursor, None)
                if not batch:
                    break
                for t in PULLED:
                    for row in batch[t.name]:
                        rows[t.name][row["id"]] = row
                last = _last_change(batch, new_cursor) or last
                cursor = new_cursor
        cursor = max(cursor, head)
        with self.replica.engine.begin() as r:
            r.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
            for t in reversed(PULLED):
                r.execute(delete(t))
            for t in PULLED:
                if rows[t.name]:
                    r.execute(insert(t), list(rows[t.name].values()))
                    report.pulled[t.name] += len(rows[t.name])
            _set_state(r, cursor=cursor, anchor=last)
            self._stamp(r, cursor)
        self._verified_head, self._verified_at = head, time.monotonic()
        report.cursor = cursor

    # -- up -----------------------------------------------------------------------------------
    def _push(self, report: SyncReport) -> None:
        self._push_events(report)
        self._push_guest_uses(report)
        self._refresh_guest_totals()

    def _push_guest_uses(self, report: SyncReport) -> None:
        """This door's guest-code uses up to the central database, by UUID (idempotent)."""
        pushed, _ = self._push_rows(USES, {"confirmed_at": None})
        report.guest_uses_pushed += pushed

    def _refresh_guest_totals(self) -> None:
        """The uses of every use-limited guest code that this replica does not hold, as the
        central database has them now: other doors' uses, and this door's own uses that the
        replica no longer has (it was rebuilt: damaged file moved aside, new SD card). The door
        counts the uses it holds itself (guests.py), so every use is counted exactly once.
        And this door's pushed uses become confirmed (counted by the central database before
        this query, so no other door can have missed them from here on)."""
        now = self.clock()
        with self.replica.engine.connect() as r:
            limited = list(
                r.execute(select(GUESTS.c.id).where(GUESTS.c.max_uses.is_not(None))).scalars()
            )
            pushed_before = list(
                r.execute(
                    select(USES.c.id).where(
                        USES.c.synced_at.is_not(None), USES.c.confirmed_at.is_(None)
                    )
                ).scalars()
            )
        counts: dict[int, int] = {}
        if limited:
            with self.central.engine.begin() as c:  # one snapshot for both queries
                counts = {
                    int(gid): int(n)
                    for gid, n in c.execute(
                        select(USES.c.guest_code_id, func.count())
                        .where(
                            USES.c.guest_code_id.in_(limited),
                            USES.c.device_id != self.device_id,
                        )
                        .group_by(USES.c.guest_code_id)
                    )
                }
                mine = list(
                    c.execute(
                        select(USES.c.id, USES.c.guest_code_id).where(
                            USES.c.guest_code_id.in_(limited),
                            USES.c.device_id == self.device_id,
                        )
                    )
                )
            if mine:
                # read after the central query: every use this replica pushed is here by now
                with self.replica.engine.connect() as r:
                    held = set(
                        r.execute(
                            select(USES.c.id).where(USES.c.id.in_([u for u, _ in mine]))
                        ).scalars()
                    )
                for use_id, gid in mine:
                    if use_id not in held:
                        counts[int(gid)] = counts.get(int(gid), 0) + 1
        with self.replica.engine.begin() as r:
            if limited:
                _upsert(
                    r,
                    TOTALS,
                    [
                        {"guest_code_id": gid, "others": counts.get(gid, 0), "refreshed_at": now}
                        for gid in limited
                    ],
                )
            if pushed_before:
                r.execute(update(USES).where(USES.c.id.in_(pushed_before)).values(confirmed_at=now))

    def _push_events(self, report: SyncReport) -> None:
        pushed, already = self._push_rows(EVENTS, {})
        report.pushed += pushed
        report.duplicates += already

    def _push_rows(self, table: Table, extra: dict[str, Any]) -> tuple[int, int]:
        """The replica's rows of `table` not yet pushed, batch by batch, up to the central
        database by UUID (with `extra` set on the central copy); returns (rows inserted, rows
        the central database already had)."""
        pushed = already = 0
        while True:
            with self.replica.engine.connect() as r:
                rows = [
                    dict(m)
                    for m in r.execute(
                        select(table)
                        .where(table.c.synced_at.is_(None))
                        .order_by(table.c.ts, table.c.id)
                        .limit(self.batch_size)
                    ).mappings()
                ]
            if not rows:
                return pushed, already
            ids = [row["id"] for row in rows]
            now = self.clock()
            fresh = self._insert_central(table, rows, ids, {**extra, "synced_at": now})
            # only now, after the central commit: a crash before this line repeats the batch,
            # and the repeat finds every UUID present
            with self.replica.engine.begin() as r:
                r.execute(update(table).where(table.c.id.in_(ids)).values(synced_at=now))
            pushed += len(fresh)
            already += len(rows) - len(fresh)

    def _insert_central(
        self, table: Table, rows: list[dict[str, Any]], ids: list[str], values: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Insert the rows whose UUID is not there yet (with `values` set), in one central
        transaction.

        Two pushers racing on the same UUIDs can deadlock in InnoDB; the loser is retried.
        """
        for attempt in range(1, RETRIES + 1):
            try:
                with self.central.engine.begin() as c:
                    present = set(
                        c.execute(select(table.c.id).where(table.c.id.in_(ids))).scalars()
                    )
                    fresh = [{**row, **values} for row in rows if row["id"] not in present]
                    if fresh:
                        _insert_ignoring_duplicates(c, table, fresh)
                return fresh
            except OperationalError as exc:
                code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
                if code not in RETRYABLE or attempt == RETRIES:
                    raise
                log.info(
                    "event=sync_push_retry table=%s code=%s attempt=%d", table.name, code, attempt
                )
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    def _heartbeat(self) -> None:
        """Tell the central devices table this door is alive, and how far behind it is."""
        with self.replica.engine.connect() as r:
            pending = r.execute(
                select(func.count()).select_from(EVENTS).where(EVENTS.c.synced_at.is_(None))
            ).scalar_one()
        now = self.clock()
        with self.central.engine.begin() as c:
            _upsert(
                c,
                DEVICES,
                [
                    {
                        "id": self.device_id,
                        "name": self.config.device.name,
                        "created_at": now,
                        "last_seen": now,
                        "last_sync_at": now,
                        "pending_events": pending,
                    }
                ],
                keep=("created_at",),
            )

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Sync now and then every interval_s on a background thread (until stop())."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sync", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a bug must not end the thread: the door would drift silently
                log.exception("event=sync_round_failed")
            self._wake.wait(self.interval_s)
            self._wake.clear()

    def trigger(self) -> None:
        """Run a round as soon as possible (e.g. the admin page just saved a user)."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the current round, waiting at most `timeout` s (default: one io timeout).
        A round still blocked on a dead server is left to its daemon thread: the replica
        writes are transactions, so the process may exit under it without harm."""
        self._stop.set()
        self._wake.set()
        if timeout is None:
            timeout = max(10.0, self.config.database.io_timeout_s)
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            if self._thread.is_alive():
                log.warning("event=sync_stop_timeout waited_s=%.1f", timeout)
            self._thread = None
        if self.owns_central:
            self.central.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        return sync_status(self.replica, self.clock())


# MySQL client errors meaning the server cannot be reached or stopped answering
_UNREACHABLE_CODES = frozenset({2002, 2003, 2006, 2013, 2055})


def _unreachable(exc: SQLAlchemyError) -> bool:
    orig = getattr(exc, "orig", None)
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in _UNREACHABLE_CODES


def short_error(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    return text.splitlines()[0][:300]


def start_sync_worker(
    config: Config, central_url: str | None, replica: Database
) -> SyncWorker | None:
    """For `doorward run`: a started worker syncing `replica` with `central_url`.

    None in the embedded default (no central URL: the replica is the database) or with
    sync.enabled = false. An unreachable server does not fail here; rounds report it.
    """
    from .central import open_central

    if not central_url or not config.sync.enabled:
        log.info("event=sync_disabled reason=%s", "no_central_url" if not central_url else "config")
        return None
    worker = SyncWorker(config, open_central(config, central_url), replica)
    worker.owns_central = True
    worker.start()
    return worker
