"""The business rules, one owner each: every page, feed, e-mail, service and command that needs a rule asks
its owner here, and a grep for the rule's inputs finds one definition (tests/rules/test_one_owner.py fails on
a second one; the other tests under tests/rules/ check that each consumer follows its owner).

Rule → where it is decided:

- Seats: which registrations hold a seat (confirmed, and offered until the offer is answered), taken and
  waitlisted counts, "N seats left", "full", "has a seat left", "the capacity cannot go below the seats taken",
  a waitlist position, the seats held for the priority groups (``reserve_holds``, ``held_seats``,
  ``SeatState.seat_for``) → ``seats`` (``SEAT_HOLDERS``, ``count_of``, ``TAKEN_COUNT``,
  ``WAITLISTED_COUNT``, ``has_seat_left``, ``waitlist_position_of`` in SQL; ``SeatState`` in Python, which the
  live counter's news carries too); a live registration (in, offered, waiting or entered: one of the event's
  registrants) → ``seats.LIVE_STATUSES``.
- May register now, may still leave, when registration closes, a lottery's window and when its draw is due
  → ``window``; the order a lottery's seed draws → ``lottery``.
- Whether a promotion is an offer, and when an offer expires → ``offers``.
- When registration opens for a student (a priority group's earlier opening) → ``priority``; a no-show, and
  how much later it opens for them → ``attendance``.
- Published (approved or cancelled: shown to everyone) and goes ahead (approved: takes registrations,
  promotions, reminders, offers seats), and cancelled (``is_cancelled``) → ``visibility`` (Python and SQL).
- Which status may go where, and the audit action of each transition → ``lifecycle`` (``TRANSITIONS``,
  ``can_transition``); which fields a published event may still change, and which events await review (the
  approval queue: ``awaiting_review``) → ``lifecycle``.
- Who may see and do what → ``permissions``.
- The account's address is verified (its owner opened the link; until then no registration, feed, role or
  staff status) → ``accounts`` (``verified`` in SQL, ``is_verified`` in Python).
- E-mail address normalisation (sign-up, log-in, throttle, staff look-ups, commands, role grants) →
  ``emails`` (``normalize_email``).
- What people may type in names, titles, places, reasons → ``text``.
- A ticket's code (it names the event and the registration, signed under ``SECRET_KEY``), the ticket a
  scanned or typed code names, and its QR code → ``tickets`` (``ticket_code``, ``ticket_read``).
- Who may register at all (everyone, the association's members, promo years, an invitation list) and who may
  see a members' event hidden from others → ``restrictions`` (``admits``, ``may_see``, ``may_be_hidden``); which
  events are on the lists, calendars and feeds → ``visibility.listed``.
- Registration questions: what a question may be, until when answers may change, which required ones are
  unanswered, how many gave each answer, a copied event's questions under new ids → ``questions``.
- An event changed, or it was cancelled: a new calendar SEQUENCE (date, time, place, title, description,
  category), the "changed on" banner, what registrants hear and how reminders move →
  ``events.notifications.changes`` (``event_changed``, ``event_cancelled``: called by the management area's
  edit and cancel and by importics).
"""
