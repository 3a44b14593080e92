"""Accounts without Django's ORM: password hashing by Django's hashers, sessions in our own table.

The session cookie holds a random token; the table keeps only its SHA-256, so a database leak gives no
usable cookie, and logging out deletes the row, so a copied cookie stops working at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import secrets
import weakref
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.middleware.csrf import rotate_token
from sqlalchemy import ARRAY, String, bindparam, case, cast, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from events.accounts.session_cache import session_cache
from events.models import AuthSession, Event, Membership, Role, User, utcnow
from events.rules import lifecycle
from events.rules.accounts import verified
from hyperion import db
from hyperion.threadgate import ThreadGate

# Password hashing is deliberately slow CPU work (PBKDF2, ~0.3 s): on the event loop it would stall every
# other request. It runs in the gate's few threads instead (hashlib releases the GIL while it hashes), with
# a bounded line: past it, GateFull (a 429), and the request's admission turn is given back while it waits
# and hashes (hyperion/threadgate.py). These are the only threads the request path ever uses, and only for
# log-in, sign-up and password changes. Checks of a password (log-ins) have places of the line kept for them
# and go first: a flood of sign-ups, whose new hashes are refused first, leaves real log-ins a place.
password_gate = ThreadGate("password-hash", running=lambda: settings.PASSWORD_HASH_THREADS,
                           waiting=lambda: settings.PASSWORD_HASH_QUEUE,
                           reserved=lambda: settings.PASSWORD_HASH_QUEUE_LOGIN)


async def password_hash(raw_password: str) -> str:
    return await password_gate.run(make_password, raw_password)


async def password_matches(raw_password: str, encoded: str | None) -> bool:
    # With no account, still hash once so that the answer takes as long as for a real one.
    return await password_gate.run(check_password, raw_password, encoded or _DUMMY_HASH, priority=True)


_DUMMY_HASH = make_password(None)  # an unusable password: never matches


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: int
    email: str
    display_name: str
    is_staff: bool
    language: str
    session_token: str = field(repr=False)
    # Editor or manager of at least one association: the navigation shows the management area.
    runs_an_association: bool = False
    # Staff only: events waiting in the approval queue (the count in the navigation).
    approval_queue_count: int = 0
    # The owner opened the link sent to the address. Until then: no registration, feed, role or staff area.
    is_verified: bool = True
    is_authenticated: bool = True
    # What priority openings read (events/rules/priority.py): the promo given at sign-up, and the associations
    # the student is a member of (any role).
    promo: int | None = None
    association_ids: frozenset[int] = frozenset()

    @property
    def can_manage(self) -> bool:
        return self.is_staff or self.runs_an_association


@dataclass(frozen=True, slots=True)
class AnonymousUser:
    id: None = None
    is_staff: bool = False
    is_authenticated: bool = False
    can_manage: bool = False
    is_verified: bool = False
    display_name: str = ""


ANONYMOUS = AnonymousUser()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def feed_token_hash(token: str) -> str:
    """What users.feed_token_hash holds for ``token`` (a plain SHA-256 is enough: the token is 192 random
    bits, nothing a dictionary could guess)."""
    return hashlib.sha256(token.encode()).hexdigest()


async def session_create(session: AsyncSession, *, user_id: int) -> str:
    """Open a logged-in session for ``user_id``; returns the token to put in the cookie."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with session.begin():
        session.add(
            AuthSession(
                token_hash=_token_hash(token),
                user_id=user_id,
                created_at=now,
                expires_at=now + timedelta(seconds=settings.SESSION_COOKIE_AGE),
            )
        )
        user = await session.get(User, user_id)
        if user is not None:
            user.last_login_at = now
    return token


async def session_end(session: AsyncSession, *, token: str) -> None:
    async with session.begin():
        await session.execute(delete(AuthSession).where(AuthSession.token_hash == _token_hash(token)))


async def sessions_end_for_user(session: AsyncSession, *, user_id: int, keep_token: str | None = None) -> None:
    """End every session of a user (password change), except the one given."""
    statement = delete(AuthSession).where(AuthSession.user_id == user_id)
    if keep_token:
        statement = statement.where(AuthSession.token_hash != _token_hash(keep_token))
    async with session.begin():
        await session.execute(statement)


# Hot path: one indexed lookup per request that carries a cookie, selecting only what every page needs,
# the navigation's management link and approval-queue count included (still one round trip).
# Staff status and roles count only once the address is confirmed: a role granted by e-mail to an address
# someone else signed up with gives them nothing.
_VERIFIED = verified()
_RUNS_AN_ASSOCIATION = (
    select(Membership.id)
    .where(Membership.user_id == User.id, db.constant_in(Membership.role, (Role.EDITOR, Role.MANAGER)))
    .correlate(User)
    .exists()
) & _VERIFIED
_IS_STAFF = User.is_staff.is_(True) & _VERIFIED
_QUEUE_COUNT = case(
    (_IS_STAFF, select(func.count(Event.id)).where(lifecycle.awaiting_review()).scalar_subquery()),
    else_=0,
)
# "3,12": the associations the user is a member of (string_agg / group_concat). Like every role, membership
# counts only once the address is verified: a squatted address given "member" must not see members' events.
_MEMBER_OF = (
    select(func.aggregate_strings(cast(Membership.association_id, String), ","))
    .where(Membership.user_id == User.id, _VERIFIED).correlate(User).scalar_subquery()
)
_USER_COLUMNS = (User.id, User.email, User.display_name, _IS_STAFF.label("is_staff"), User.language,
                 _RUNS_AN_ASSOCIATION.label("runs_an_association"), _QUEUE_COUNT.label("approval_queue_count"),
                 _VERIFIED.label("is_verified"), AuthSession.expires_at, User.promo, _MEMBER_OF.label("member_of"))
_USER_FOR_TOKEN = (
    select(*_USER_COLUMNS)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(AuthSession.token_hash == bindparam("token_hash"))
    .where(AuthSession.expires_at > bindparam("now"))
    .where(User.is_active.is_(True))
)


def _users_for_tokens(dialect: str):
    """``_USER_FOR_TOKEN`` for a batch of tokens' hashes, with the hash to tell the rows apart. One statement
    text whatever the batch's size (an array on PostgreSQL, JSON on SQLite), so that it is prepared once."""
    if dialect == "postgresql":
        hashes = bindparam("token_hashes", type_=ARRAY(String))
        wanted = AuthSession.token_hash == func.any(hashes)
    else:
        wanted = AuthSession.token_hash.in_(select(func.json_each(bindparam("token_hashes_json"))
                                                   .table_valued("value").c.value).scalar_subquery())
    return (select(*_USER_COLUMNS, AuthSession.token_hash)
            .join(AuthSession, AuthSession.user_id == User.id)
            .where(wanted, AuthSession.expires_at > bindparam("now"), User.is_active.is_(True)))


_USERS_FOR_TOKENS = {dialect: _users_for_tokens(dialect) for dialect in ("postgresql", "sqlite")}
# At most this many sessions per read: bounds the statement's parameter.
SESSION_READ_MAX = 500


class SessionReads:
    """The sessions that requests arriving together need and memory does not hold, read together.

    At a registration opening hundreds of students who were not seen lately send their first request within
    a second: one indexed read each cost ~0.3 ms of CPU, most of it SQLAlchemy's and asyncpg's per-statement
    work, not the row (bench/README.md). Here a lookup starts a read of its own at once while fewer than
    ``SESSION_READS_AT_ONCE`` are in flight; past that, lookups wait, and the next read to finish takes all of
    them in its next statement (group commit, for reads). Each waiter gets its own row: the batch is keyed by
    the token's hash, never by position. The reads run in tasks of their own, so a client that leaves cancels
    only its own wait.

    Waiting pays only while reads are quick. With a distant database (+100 ms a round trip, the benchmark's
    scenario b) four reads in flight made every new student wait for one read to finish and then for its own:
    the logged-in open loop's median went from 106 ms to 1.07 s at the commit that brought the batches. So a
    lookup waits only if the read in flight that began first has been running for less than
    ``SESSION_READS_PATIENCE``; past that (a distant or overloaded database), it starts a read of its own."""

    def __init__(self) -> None:
        self.waiting: dict[str, list[asyncio.Future]] = {}
        self.readers: set[asyncio.Task] = set()
        self.began: dict[asyncio.Task, float] = {}  # when each reader began its current read (loop time)

    async def row_for(self, token_hash: str):
        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        self.waiting.setdefault(token_hash, []).append(answer)
        if len(self.readers) < settings.SESSION_READS_AT_ONCE or (
                loop.time() - min(self.began.values(), default=loop.time()) > settings.SESSION_READS_PATIENCE):
            reader = asyncio.create_task(self._read_while_waiting(), name="session-reads")
            self.readers.add(reader)
            reader.add_done_callback(self._reader_done)
        return await answer

    def _reader_done(self, reader: asyncio.Task) -> None:
        self.readers.discard(reader)
        self.began.pop(reader, None)

    async def _read_while_waiting(self) -> None:
        batch: dict[str, list[asyncio.Future]] = {}
        me = asyncio.current_task()
        try:
            while self.waiting:
                hashes = list(itertools.islice(self.waiting, SESSION_READ_MAX))
                batch = {token_hash: self.waiting.pop(token_hash) for token_hash in hashes}
                if me is not None:
                    self.began[me] = asyncio.get_running_loop().time()
                try:
                    async with db.read_connection() as connection:
                        rows = (await connection.execute(_USERS_FOR_TOKENS[connection.dialect.name], {
                            "token_hashes": hashes, "token_hashes_json": json.dumps(hashes), "now": utcnow(),
                        })).all()
                except Exception as error:  # each waiter raises it, as its own lookup would have
                    _answer(batch, error=error)
                    continue
                _answer(batch, found={row.token_hash: row for row in rows})
        except BaseException as error:  # cancelled (a shutdown, a test's loop closing): nobody waits forever
            interrupted = RuntimeError(f"session read interrupted: {error!r}")
            _answer(batch, error=interrupted)
            if len(self.readers) <= 1:  # no other reader will take the ones still waiting
                pending, self.waiting = self.waiting, {}
                _answer(pending, error=interrupted)
            raise


def _answer(batch: dict[str, list[asyncio.Future]], *, found: dict | None = None,
            error: BaseException | None = None) -> None:
    for token_hash, answers in batch.items():
        for answer in answers:
            if answer.done():
                continue  # its caller left
            if error is not None:
                answer.set_exception(error)
            else:
                answer.set_result((found or {}).get(token_hash))


# One per event loop (the tests run several loops in one process).
_session_reads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SessionReads] = weakref.WeakKeyDictionary()


def session_reads() -> SessionReads:
    loop = asyncio.get_running_loop()
    reads = _session_reads.get(loop)
    if reads is None:
        reads = _session_reads[loop] = SessionReads()
    return reads


def _current_user(row, token: str) -> CurrentUser:
    return CurrentUser(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        is_staff=row.is_staff,
        language=row.language,
        session_token=token,
        runs_an_association=bool(row.runs_an_association),
        approval_queue_count=row.approval_queue_count or 0,
        is_verified=bool(row.is_verified),
        promo=row.promo,
        association_ids=frozenset(int(part) for part in (row.member_of or "").split(",") if part),
    )


async def user_for_token(session: db.Reader, *, token: str) -> CurrentUser | None:
    row = (await session.execute(_USER_FOR_TOKEN, {"token_hash": _token_hash(token), "now": utcnow()})).first()
    return None if row is None else _current_user(row, token)


async def user_for_request(request) -> CurrentUser | AnonymousUser:
    token = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not token or len(token) > 100:
        return ANONYMOUS
    # Most pages of a logged-in student: no query at all (events/accounts/session_cache.py says when it forgets).
    user = session_cache.get(token)
    if user is not None:
        return user
    generation = session_cache.generation
    row = await session_reads().row_for(_token_hash(token))
    if row is None:
        request._hyperion_clear_session_cookie = True
        return ANONYMOUS
    user = _current_user(row, token)
    session_cache.put(token, user, session_expires_at=row.expires_at, generation=generation)
    return user


def login(request, token: str) -> None:
    """Mark the response to carry a new session cookie (set by the middleware), and rotate the CSRF
    token as Django's own log-in does (a token seen before log-in is useless after it)."""
    request._hyperion_new_session_token = token
    rotate_token(request)


def logout(request) -> None:
    request._hyperion_clear_session_cookie = True


def apply_session_cookie(request, response) -> None:
    token = getattr(request, "_hyperion_new_session_token", None)
    if token:
        response.set_cookie(
            settings.SESSION_COOKIE_NAME,
            token,
            max_age=settings.SESSION_COOKIE_AGE,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite=settings.SESSION_COOKIE_SAMESITE,
        )
    elif getattr(request, "_hyperion_clear_session_cookie", False):
        response.delete_cookie(settings.SESSION_COOKIE_NAME, samesite=settings.SESSION_COOKIE_SAMESITE)


class SessionLoader:
    """What hyperion's AuthSessionMiddleware asks of the accounts (hyperion.hooks.SessionLoader; named by
    settings.SESSION_LOADER)."""

    anonymous = ANONYMOUS
    user_for_request = staticmethod(user_for_request)
    apply_cookie = staticmethod(apply_session_cookie)


session_loader = SessionLoader()
