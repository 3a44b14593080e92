"""The statements of a registration batch (services._place_batch_locked, under the event's lock), built once:
what placing the batch needs to know, read in one round trip (``PLACE_STATE``, by dialect), and what it
writes: its new registrations (``INSERT_REGISTRATIONS``; on PostgreSQL ``WRITE_BATCH_POSTGRESQL``, with their
messages and the live news in the same statement) and the registrations of students who come back
(``REJOIN``).
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    Boolean,
    Integer,
    and_,
    any_,
    bindparam,
    func,
    insert,
    null,
    select,
    true,
    union_all,
    update,
)

from events import outbox
from events.live import broadcast
from events.models import Event, Registration, RegistrationStatus
from events.registration import queries
from events.rules.seats import SEAT_HOLDERS, count_of


# What placing a batch of registrations needs to know, read in ONE round trip under the event's lock: the
# seats taken, the line's length and its last place, and the earlier registration of each student of the
# batch, if any (one row per such registration; one row of NULLs when there is none). The event's row is
# the join's left side only so that the counts come back even without earlier registrations. Below them,
# one row per confirmed event of the students to check (``check_ids``) that overlaps this one (its title),
# soonest first: a registration that was not confirmed over an overlap needs no read before the lock.
def _place_state(dialect: str):
    def among(name: str):
        if dialect == "postgresql":  # one statement text whatever the batch's size: prepared once per connection
            return Registration.user_id == any_(bindparam(name, type_=ARRAY(Integer)))
        return Registration.user_id.in_(bindparam(name, expanding=True))

    state = (
        select(
            count_of(SEAT_HOLDERS, event_id=bindparam("event_id")).label("taken"),
            count_of(RegistrationStatus.WAITLISTED, event_id=bindparam("event_id")).label("waitlisted"),
            select(func.max(Registration.queued_at)).where(Registration.event_id == bindparam("event_id"))
            .scalar_subquery().label("last_queued_at"),
            Registration.user_id, Registration.id, Registration.status,
            count_of(SEAT_HOLDERS, event_id=bindparam("event_id"), from_reserve=True).label("reserve_taken"),
            null().label("overlap_title"), null().label("overlap_starts_at"),
        )
        .select_from(Event)
        .outerjoin(Registration, and_(Registration.event_id == Event.id, among("user_ids")))
        .where(Event.id == bindparam("event_id"))
    )
    mine = queries.confirmed_going_ahead(among("check_ids"), "mine")
    overlaps = (
        select(null(), null(), null(), mine.c.user_id, null(), null(), null(), mine.c.title, mine.c.starts_at)
        .where(queries.overlapping(
            mine, target_id=bindparam("event_id"), starts_at=bindparam("starts_at", type_=Event.starts_at.type),
            ends_at=bindparam("ends_at", type_=Event.ends_at.type)))
    )
    return union_all(state, overlaps).order_by("overlap_starts_at")


PLACE_STATE = {dialect: _place_state(dialect) for dialect in ("postgresql", "sqlite")}

INSERT_REGISTRATIONS = insert(Registration).returning(Registration.id, sort_by_parameter_order=True)


def _write_batch_postgresql():
    """PostgreSQL: a batch's new registrations (one array per column: the statement's text is the same
    whatever the batch's size, so it is prepared once per connection), their outbox rows and the live news,
    in one statement. Its rows: (id, user_id) of each new registration, or one row of NULLs when there is
    none. The news' SELECT is the join's left side so that it runs exactly once, with or without new rows
    (a CTE that only reads runs when it is read)."""
    given = func.unnest(bindparam("user_ids", type_=ARRAY(Integer)),
                        bindparam("statuses", type_=ARRAY(Registration.status.type)),
                        bindparam("queued_ats", type_=ARRAY(Registration.queued_at.type)),
                        bindparam("from_reserves", type_=ARRAY(Boolean))
                        ).table_valued("user_id", "status", "queued_at", "from_reserve").render_derived()
    registered = (
        insert(Registration)
        .from_select(["event_id", "user_id", "status", "queued_at", "created_at", "updated_at", "from_reserve"],
                     select(bindparam("event_id", type_=Integer), given.c.user_id, given.c.status,
                            given.c.queued_at, given.c.queued_at, given.c.queued_at, given.c.from_reserve))
        .returning(Registration.id, Registration.user_id)
        .cte("registered")
    )
    news = broadcast.NEWS_IN_STATEMENT.cte("news")
    return (select(registered.c.id, registered.c.user_id)
            .select_from(news.outerjoin(registered, true()))
            .add_cte(outbox.upsert_from_arrays().cte("messages")))


WRITE_BATCH_POSTGRESQL = _write_batch_postgresql()

REJOIN = (update(Registration).where(Registration.id == bindparam("registration_id"))
           .values(status=bindparam("new_status"), queued_at=bindparam("new_queued_at"), checked_in_at=None,
                   offer_expires_at=None, from_reserve=bindparam("new_from_reserve"),
                   updated_at=bindparam("new_queued_at")))
