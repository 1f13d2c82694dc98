"""Owns admin accounts, logins (throttled in the database) and server-side sessions."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from appliance.config import AdminConfig
from appliance.security import hash_password, password_needs_rehash, verify_password
from appliance.store.db import Database
from appliance.store.models import utcnow
from appliance.store.models_admin import ADMIN_ROLES, AdminAccount, AdminSession, LoginAttempt

log = logging.getLogger(__name__)

ENV_ADMIN_PASSWORD = "DOORWARD_ADMIN_PASSWORD"  # noqa: S105 (a variable name)
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
PASSWORD_MIN, PASSWORD_MAX = 10, 256
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """An account operation refused; the message says which field and why."""


def validate_username(username: str) -> str:
    if not USERNAME_RE.match(username or ""):
        raise AccountError("username must be 2-64 characters: letters, digits, _ . @ -")
    return username


PASSWORD_MIN_SCORE = 3  # zxcvbn's 0-4 scale: 3 = "safely unguessable", ~10^8 guesses or more


def validate_password(password: str, username: str | None = None) -> str:
    """Length, then a guessability check: zxcvbn's lists of common passwords, words, names,
    keyboard patterns, repeats and sequences, with the username and "doorward" as known
    words. The error says why (zxcvbn's own warning) and never repeats the password."""
    if not PASSWORD_MIN <= len(password or "") <= PASSWORD_MAX:
        raise AccountError(f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long")
    if username and len(username) >= 3 and username.lower() in password.lower():
        raise AccountError("password must not contain the username")
    from zxcvbn import zxcvbn

    inputs = [w for w in (username, "doorward", "admin") if w]
    result = zxcvbn(password[:100], user_inputs=inputs)
    if result["score"] < PASSWORD_MIN_SCORE:
        why = (result.get("feedback") or {}).get("warning") or "it is too easy to guess"
        raise AccountError(
            f"password is too easy to guess ({why.rstrip('.')}); use a few unrelated words"
        )
    return password


def validate_role(role: str) -> str:
    if role not in ADMIN_ROLES:
        raise AccountError(f"role must be one of {', '.join(ADMIN_ROLES)}, got {role!r}")
    return role


# ---- accounts -------------------------------------------------------------------------------
def create_account(
    db: Database, username: str, password: str, role: str = "admin", *, must_change: bool = False
) -> int:
    validate_username(username)
    validate_password(password, username)
    validate_role(role)
    account = AdminAccount(
        username=username,
        password_hash=hash_password(password),
        role=role,
        active=True,
        must_change_password=must_change,
        failed_logins=0,
    )
    try:
        with db.session() as s:
            s.add(account)
    except IntegrityError:
        raise AccountError(f"admin account {username!r} already exists") from None
    log.info("event=admin_account_created username=%s role=%s", username, role)
    return account.id


def get_account(db: Database, username: str) -> AdminAccount:
    with db.session() as s:
        acc = s.scalars(select(AdminAccount).where(AdminAccount.username == username)).first()
    if acc is None:
        raise AccountError(f"no admin account {username!r}")
    return acc


def list_accounts(db: Database) -> list[AdminAccount]:
    with db.session() as s:
        return list(s.scalars(select(AdminAccount).order_by(AdminAccount.username)))


def set_password(db: Database, username: str, password: str, *, must_change: bool = False) -> None:
    """New password; every session of the account ends and any lock is lifted."""
    validate_password(password, username)
    acc = get_account(db, username)
    with db.session() as s:
        s.execute(
            update(AdminAccount)
            .where(AdminAccount.id == acc.id)
            .values(
                password_hash=hash_password(password),
                must_change_password=must_change,
                failed_logins=0,
                locked_until=None,
            )
        )
        s.execute(delete(AdminSession).where(AdminSession.account_id == acc.id))


def update_account(
    db: Database, username: str, *, role: str | None = None, active: bool | None = None
) -> None:
    acc = get_account(db, username)
    values: dict[str, object] = {}
    if role is not None:
        values["role"] = validate_role(role)
    if active is not None:
        values["active"] = active
        if active:
            values.update(failed_logins=0, locked_until=None)
    if not values:
        return
    with db.session() as s:
        if acc.role == "admin" and (values.get("role", "admin") != "admin" or active is False):
            _keep_one_admin(s, acc.id)
        s.execute(update(AdminAccount).where(AdminAccount.id == acc.id).values(**values))
        if active is False:
            s.execute(delete(AdminSession).where(AdminSession.account_id == acc.id))


def delete_account(db: Database, username: str) -> None:
    acc = get_account(db, username)
    with db.session() as s:
        if acc.role == "admin":
            _keep_one_admin(s, acc.id)
        s.execute(delete(AdminSession).where(AdminSession.account_id == acc.id))
        s.execute(delete(AdminAccount).where(AdminAccount.id == acc.id))


def _keep_one_admin(s: object, account_id: int) -> None:
    others = s.scalar(  # type: ignore[attr-defined]
        select(func.count(AdminAccount.id)).where(
            AdminAccount.role == "admin",
            AdminAccount.active.is_(True),
            AdminAccount.id != account_id,
        )
    )
    if not others:
        raise AccountError("this is the last active admin account; add another admin first")


INITIAL_PASSWORD_FILE = "initial-admin-password"  # noqa: S105 (a file name)


def initial_password_path(data_dir: Path) -> Path:
    """Where the one-time password of the first admin account is written (mode 0600)."""
    return Path(data_dir).absolute() / INITIAL_PASSWORD_FILE


def _write_private(path: Path, text: str) -> None:
    """Create `path` readable by its owner only (0600 whatever the umask), never replacing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_initial_admin(
    db: Database,
    env: Mapping[str, str] | None = None,
    out: Callable[[str], None] = print,
    *,
    password_file: Path | None = None,
) -> str | None:
    """With no admin account at all, create `admin`: the password from $DOORWARD_ADMIN_PASSWORD
    (e.g. a systemd credential), else a one-time password written to `password_file` (mode
    0600; default <data_dir>/initial-admin-password) that must be changed at the first login.
    The password itself never reaches stdout or the log: only the file's path is reported.
    Returns the username created, or None when accounts exist already."""
    env = os.environ if env is None else env
    with db.session() as s:
        if s.scalar(select(func.count(AdminAccount.id))):
            return None
    given = env.get(ENV_ADMIN_PASSWORD)
    password = given or secrets.token_urlsafe(12)
    if not given and password_file is None:
        raise AccountError("a one-time admin password needs a file to be written to")
    try:
        create_account(db, "admin", password, "admin", must_change=not given)
    except AccountError as exc:
        if "already exists" in str(exc):  # another worker won the race (and wrote the file)
            return None
        raise AccountError(f"{ENV_ADMIN_PASSWORD}: {exc}") from None
    if not given:
        assert password_file is not None
        try:
            password_file.unlink(missing_ok=True)  # a stale one from an earlier database
            _write_private(password_file, password + "\n")
        except OSError as exc:
            with db.session() as s:  # nobody could sign in; the next start tries again
                s.execute(delete(AdminAccount).where(AdminAccount.username == "admin"))
            raise AccountError(
                f"cannot write the one-time admin password to {password_file}: "
                f"{exc.strerror or exc}"
            ) from None
    if given:
        out(f"doorward: created admin account 'admin' with the password from {ENV_ADMIN_PASSWORD}")
    else:
        out(
            "doorward: created admin account 'admin'; its one-time password is in "
            f"{password_file} (readable by this user only; it must be changed at the first login)"
        )
    return "admin"


# ---- login ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoginResult:
    ok: bool
    account_id: int | None = None
    # bad_credentials | throttled (the page answers both alike; the reason is for logs/tests)
    reason: str | None = None
    retry_after_s: int = 0


def pair_delay_s(failures: int, settings: AdminConfig) -> float:
    """How long one client must wait after its last failure on one account: nothing for the
    first login_max_failures failures, then 2, 4, 8 ... s, at most login_lockout_s."""
    over = failures - settings.login_max_failures
    if over < 0:
        return 0.0
    return float(min(settings.login_lockout_s, 2.0 ** min(over + 1, 30)))


def client_key(ip: str) -> str:
    """The address the login throttles count by: an IPv4 address itself, an IPv6 address's
    /64 (one home or phone network holds 2^64 addresses, every one of them the client's own;
    an IPv4-mapped address is its IPv4 address). Anything else (e.g. "-") stays as it is."""
    try:
        addr = ipaddress.ip_address((ip or "-").split("%", 1)[0])
    except ValueError:
        return (ip or "-")[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


def attempt_login(
    db: Database,
    settings: AdminConfig,
    username: str,
    password: str,
    ip: str,
    now: datetime | None = None,
    *,
    reauth: bool = False,
) -> LoginResult:
    """Check a login. Attempts are kept in the database, so every worker shares the throttle.

    There is no account lock that a stranger could trigger. Two throttles instead:
    - per client: login_ip_limit failures from one address within login_window_s, and that
      address is refused until they age out (password spraying over many usernames);
    - per account and client: after login_max_failures failures of one address on one
      account, that address waits pair_delay_s (doubling) before its next try.
    The owner signing in from another address is never slowed by either. A throttled attempt
    still costs one password hash, so its answer and timing match a wrong password.
    Both count by client_key(ip): an IPv6 client's whole /64 is one client.
    `reauth`: a signed-in account confirming its current password (the password form); the
    same throttles and accounting, but it is no new login (last_login_at stays).
    Names and addresses reach the log through %r: a newline in a name forges no log line.
    """
    now = now or utcnow()
    username = (username or "")[:64]
    shown_ip = (ip or "-")[:64]
    ip = client_key(ip)
    event = "admin_reauth" if reauth else "admin_login"
    since = now - timedelta(seconds=settings.login_window_s)
    with db.session() as s:
        ip_failures = s.scalar(  # COUNT(*) is never NULL
            select(func.count(LoginAttempt.id)).where(
                LoginAttempt.ip == ip, LoginAttempt.ts >= since, LoginAttempt.success.is_(False)
            )
        )
        pair = (LoginAttempt.ip == ip, LoginAttempt.username == username)
        last_ok = s.scalar(select(func.max(LoginAttempt.ts)).where(*pair, LoginAttempt.success))
        start = max(since, last_ok) if last_ok is not None else since
        pair_failures, last_failure = s.execute(
            select(func.count(LoginAttempt.id), func.max(LoginAttempt.ts)).where(
                *pair, LoginAttempt.ts > start, LoginAttempt.success.is_(False)
            )
        ).one()
        acc = s.scalars(select(AdminAccount).where(AdminAccount.username == username)).first()
        account_id = acc.id if acc is not None else None
        pw_hash = acc.password_hash if acc is not None else _DUMMY_HASH
        active = acc is not None and acc.active
    wait = 0.0
    if (ip_failures or 0) >= settings.login_ip_limit:
        wait = float(settings.login_window_s)
    elif pair_failures and last_failure is not None:
        left = pair_delay_s(pair_failures, settings) - (now - last_failure).total_seconds()
        wait = max(0.0, left)
    if wait > 0:
        verify_password(_DUMMY_HASH, password or "")  # the same cost as a real check
        with db.session() as s:
            s.add(LoginAttempt(ts=now, username=username, ip=ip, success=False))
        log.warning(
            "event=%s_throttled ip=%r username=%r wait_s=%d", event, shown_ip, username, wait
        )
        return LoginResult(False, reason="throttled", retry_after_s=int(wait) + 1)
    # hash outside the transaction: a slow argon2 must not hold SQLite's write lock
    ok = verify_password(pw_hash, password or "") and active
    with db.session() as s:
        s.add(LoginAttempt(ts=now, username=username, ip=ip, success=ok))
        if account_id is None:
            log.warning("event=%s_failed username=%r ip=%r known=0", event, username, shown_ip)
            return LoginResult(False, reason="bad_credentials")
        if not ok:
            # atomic increment (shown by `doorward admin-user list`); it never locks
            s.execute(
                update(AdminAccount)
                .where(AdminAccount.id == account_id)
                .values(failed_logins=AdminAccount.failed_logins + 1)
            )
            log.warning("event=%s_failed username=%r ip=%r known=1", event, username, shown_ip)
            return LoginResult(False, reason="bad_credentials")
        values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
        if not reauth:
            values["last_login_at"] = now
        if password_needs_rehash(pw_hash):
            values["password_hash"] = hash_password(password)
        s.execute(update(AdminAccount).where(AdminAccount.id == account_id).values(**values))
    log.info("event=%s username=%r ip=%r", event, username, shown_ip)
    return LoginResult(True, account_id=account_id)


# ---- sessions -------------------------------------------------------------------------------
def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_session(
    db: Database, account_id: int, ip: str | None = None, user_agent: str | None = None
) -> str:
    """A fresh random session id (the cookie value); the database keeps only its hash."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with db.session() as s:
        s.add(
            AdminSession(
                id_hash=_digest(token),
                account_id=account_id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                last_seen_at=now,
                ip=(ip or "")[:64] or None,
                user_agent=(user_agent or "")[:255] or None,
            )
        )
    return token


@dataclass(frozen=True)
class SessionInfo:
    account_id: int
    username: str
    role: str
    must_change_password: bool
    csrf_token: str


def load_session(
    db: Database,
    token: str | None,
    settings: AdminConfig,
    now: datetime | None = None,
    *,
    touch: bool = True,
) -> SessionInfo | None:
    """The live session for a cookie value, touching it (unless `touch` is false: a page's own
    polling is not a person's activity); None when unknown, idle or too old."""
    if not token or len(token) > 128:
        return None
    now = now or utcnow()
    digest = _digest(token)
    with db.session() as s:
        row = s.execute(
            select(AdminSession, AdminAccount)
            .join(AdminAccount, AdminAccount.id == AdminSession.account_id)
            .where(AdminSession.id_hash == digest)
        ).first()
        if row is None:
            return None
        sess, acc = row
        idle = (now - sess.last_seen_at).total_seconds()
        age = (now - sess.created_at).total_seconds()
        if idle > settings.session_idle_s or age > settings.session_max_s or not acc.active:
            s.execute(delete(AdminSession).where(AdminSession.id_hash == digest))
            return None
        if touch and idle > 5:  # spare the database a write on every request
            sess.last_seen_at = now
        return SessionInfo(acc.id, acc.username, acc.role, acc.must_change_password,
                           sess.csrf_token)  # fmt: skip


def end_session(db: Database, token: str | None) -> None:
    if token:
        with db.session() as s:
            s.execute(delete(AdminSession).where(AdminSession.id_hash == _digest(token)))


def sweep_sessions(db: Database, settings: AdminConfig, now: datetime | None = None) -> int:
    """Delete sessions past their idle or absolute limit, and login attempts past the window."""
    now = now or utcnow()
    with db.session() as s:
        gone: CursorResult[Any] = s.execute(  # type: ignore[assignment]
            delete(AdminSession).where(
                (AdminSession.last_seen_at < now - timedelta(seconds=settings.session_idle_s))
                | (AdminSession.created_at < now - timedelta(seconds=settings.session_max_s))
            )
        )
        n = gone.rowcount
        s.execute(
            delete(LoginAttempt).where(
                LoginAttempt.ts < now - timedelta(seconds=max(settings.login_window_s, 86400))
            )
        )
    return int(n or 0)
