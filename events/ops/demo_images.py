"""The demo's pictures: a logo for each demo association and a poster for its soonest events, drawn with
Pillow, then stored like an upload (hyperion.images.accept: the same checks, widths and names) and set
through the management services, as the demo's staff account (each one audited, like a real upload).

Deterministic: an association's colour comes from its place in the demo's list, a poster's shapes from a
generator seeded by the event's slug, its palette from its category. The text is French, like the rest of the
demo. Drawing is the cheap part; what costs is hyperion.images.prepare, its resizes and WebP encodes: ~85 ms
of CPU a poster at POSTER_SIZE, all told, so a poster for each of the ~280 events of the default demo that may
have one would add over twenty seconds. Only the POSTERS soonest have one: the first pages a visitor sees."""

from __future__ import annotations

import colorsys
import hashlib
import io
import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from events.localtime import local
from events.models import Association, Event, User, utcnow
from events.ops import demo
from events.rules import permissions, visibility
from events.rules.permissions import Actor
from events.staff.images import ImageChoice, association_logo_set, event_poster_set
from hyperion import images

if TYPE_CHECKING:
    from PIL import ImageFont

LOGO_SIZE = 320  # the directory shows a logo at 5rem, 160 px on a 2x screen; 320 for the larger ones
# The event page shows a poster 320 CSS pixels wide (640 on a 2x screen), a list a 64 px square: a 4:5
# poster 640 px wide covers both, and costs prepare a third of what a 1200 x 1600 one would.
POSTER_SIZE = (640, 800)
# The soonest events that get a poster (two pages of the home page's list, whose later events show their
# association's logo instead): about four seconds of CPU.
POSTERS = 40
# Of those that go ahead, the fourth, then one in SKIPPED_ONE_IN, has none, so that the home page's first
# screen also shows the fallback (the association's logo) as a real site would; cancelled events have none
# either (nobody may change a cancelled event's poster: events/rules/permissions.py).
SKIPPED_ONE_IN = 8
SKIPPED_FIRST = 3  # the fourth, counted from 0

# Each category's palette: the gradient's top and bottom, and the accent of its shapes and date band.
PALETTES: dict[str, tuple[str, str, str]] = {
    "party": ("#2b0a3d", "#c2185b", "#ffd54f"),
    "sport": ("#0d47a1", "#00acc1", "#c6ff00"),
    "culture": ("#4a148c", "#ad1457", "#ffcc80"),
    "career": ("#102a43", "#3e6e8e", "#ffb300"),
    "workshop": ("#263238", "#e65100", "#ffe082"),
    "conference": ("#0b1e3f", "#1565c0", "#4dd0e1"),
    "charity": ("#1b5e20", "#9ccc65", "#fff59d"),
    "gaming": ("#1a1a2e", "#6a1b9a", "#00e5ff"),
    "trip": ("#01579b", "#4fc3f7", "#ffffff"),
}
DEFAULT_PALETTE = ("#37474f", "#78909c", "#ffca28")

WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")
# Words an association's initials skip: "Club Robotique" is Ro, not CR.
INITIALS_SKIP = {"club", "de", "des", "du", "la", "le", "les", "d", "l"}


@dataclass(frozen=True, slots=True)
class DemoImages:
    logos: int
    posters: int


async def demo_images_load(session: AsyncSession, *,
                           progress: Callable[[str, int, int], None] = lambda step, done, total: None) -> DemoImages:
    """Give the demo associations without a logo one, and the POSTERS soonest of their events not over yet a
    poster (_poster_events)."""
    async with session.begin():
        staff_id = (await session.execute(select(User.id).where(User.email == demo.STAFF_EMAIL))).scalar_one()
        slugs = [slug for slug, *_ in demo.ASSOCIATIONS]
        associations = (await session.execute(
            select(Association.id, Association.slug, Association.name, Association.logo)
            .where(Association.slug.in_(slugs)))).all()
        events = (await session.execute(
            select(Event.id, Event.slug, Event.title, Event.category, Event.starts_at, Event.all_day,
                   Event.location, Event.status, Event.association_id)
            .where(Event.association_id.in_([row.id for row in associations]), Event.poster.is_(None),
                   Event.ends_at >= utcnow())
            .order_by(Event.starts_at, Event.id))).all()
    actor = Actor(id=staff_id, is_staff=True)
    colours = {slug: association_colour(index) for index, slug in enumerate(slugs)}
    names = {row.id: row.name for row in associations}
    slug_of = {row.id: row.slug for row in associations}

    logos = 0
    for row in associations:
        if row.logo is None:
            ref = await images.accept(logo_png(row.name, colours[row.slug], seed=row.slug))
            await association_logo_set(session, actor=actor, association_id=row.id, choice=ImageChoice(
                alt=f"Logo de l'association {row.name}", image=ref))
            logos += 1
        progress("logos", logos, len(associations))

    chosen = _poster_events(events, actor)
    for done, event in enumerate(chosen, start=1):
        association = names[event.association_id]
        when = french_when(local(event.starts_at), all_day=event.all_day)
        ref = await images.accept(poster_png(
            title=event.title, association=association, when=when, place=event.location,
            category=event.category, colour=colours[slug_of[event.association_id]], seed=event.slug))
        await event_poster_set(session, actor=actor, event_id=event.id, choice=ImageChoice(
            alt=f"Affiche : {event.title}, {association}, {when}", image=ref))
        progress("posters", done, len(chosen))
    return DemoImages(logos=logos, posters=len(chosen))


def _poster_events(events, actor: Actor) -> list:
    """The events that get a poster, soonest first: those the rules let the staff account change, but the
    skipped ones (SKIPPED_ONE_IN), at most POSTERS."""
    chosen, going_ahead = [], 0
    for event in events:
        if not permissions.can_change_poster(actor, association_id=event.association_id, status=event.status):
            continue
        if visibility.goes_ahead(event.status):
            going_ahead += 1
            if (going_ahead - 1) % SKIPPED_ONE_IN == SKIPPED_FIRST:
                continue
        chosen.append(event)
    return chosen[:POSTERS]


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def association_colour(index: int) -> tuple[int, int, int]:
    """A colour per association, told apart from the others: hues a golden angle apart, dark enough for
    white initials."""
    hue = (0.07 + index * 0.381966) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.72, 0.78)
    return round(red * 255), round(green * 255), round(blue * 255)


def initials(name: str) -> str:
    """BDE stays BDE; "Forum Entreprises" is FE, "Club Robotique" Ro, "Ciné-Club" Ci."""
    if name.isupper() and len(name) <= 4:
        return name
    words = [word for word in name.replace("-", " ").split() if word.lower() not in INITIALS_SKIP]
    if len(words) == 1:
        return words[0][:2].capitalize()
    return "".join(word[0] for word in words[:2]).upper()


def french_when(moment: datetime, *, all_day: bool) -> str:
    day = f"{WEEKDAYS[moment.weekday()]} {moment.day if moment.day != 1 else '1er'} {MONTHS[moment.month - 1]}"
    if all_day:
        return day
    return f"{day}, {moment.hour} h {moment.minute:02d}" if moment.minute else f"{day}, {moment.hour} h"


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    try:  # DejaVu has the accents of French; most Linux systems have it (fonts-dejavu-core)
        return ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:  # Pillow's own font, which has ASCII letters only: see _printable
        return ImageFont.load_default(size=size)  # type: ignore[return-value]


def _printable(text: str, font: ImageFont.FreeTypeFont) -> str:
    """The text, without its accents when the font has none (Pillow's own font draws é as a box)."""
    if font.getname()[0] == "DejaVu Sans":
        return text
    flat = text.replace("Œ", "OE").replace("œ", "oe").replace("’", "'")
    return "".join(char for char in unicodedata.normalize("NFKD", flat) if not unicodedata.combining(char))


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)  # read once by prepare: speed over size
    return buffer.getvalue()


def _disc(draw, centre: tuple[int, int], radius: int, colour, text: str, *, rounded: bool) -> None:
    box = (centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius)
    if rounded:
        draw.rounded_rectangle(box, radius=radius // 3, fill=colour)
    else:
        draw.ellipse(box, fill=colour)
    size = radius
    while size > 8 and _font(size).getlength(_printable(text, _font(size))) > radius * 1.45:
        size -= 4
    font = _font(size)
    draw.text(centre, _printable(text, font), font=font, fill="white", anchor="mm")


def logo_png(name: str, colour: tuple[int, int, int], *, seed: str) -> bytes:
    """A disc or a rounded square of the association's colour with its initials, on transparency."""
    from PIL import Image, ImageDraw

    rng = random.Random(_seed(seed))  # noqa: S311 - shapes, not secrets  # nosec B311
    image = Image.new("RGBA", (LOGO_SIZE, LOGO_SIZE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    half = LOGO_SIZE // 2
    rounded = rng.random() < 0.5
    _disc(draw, (half, half), half - 8, colour, initials(name), rounded=rounded)
    # A thin ring inside the edge, so that two logos of close colours still differ in shape.
    inset = rng.choice((22, 28, 34))
    ring = (inset, inset, LOGO_SIZE - inset, LOGO_SIZE - inset)
    if rounded:
        draw.rounded_rectangle(ring, radius=(half - inset) // 3, outline=(255, 255, 255, 150), width=4)
    else:
        draw.ellipse(ring, outline=(255, 255, 255, 150), width=4)
    return _png(image)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def _wrapped(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    lines: list[str] = []
    # French puts a space before : ; ! ?: it stays with the word before, so that no line starts with one.
    for word in re.split(r" (?![:;!?])", text):
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _title_lines(title: str, width: int, height: int) -> tuple[ImageFont.FreeTypeFont, list[str]]:
    """The largest size at which the title fits in at most four lines of the box."""
    size = width // 7
    while True:
        font = _font(size)
        lines = _wrapped(_printable(title, font), font, width)
        fits = all(font.getlength(line) <= width for line in lines) and len(lines) * size * 1.15 <= height
        if fits or size <= 24:
            return font, lines
        size -= 6


def poster_png(*, title: str, association: str, when: str, place: str, category: str,
               colour: tuple[int, int, int], seed: str) -> bytes:
    """A 4:5 poster: the category's gradient and a few bold shapes, the association's name at the top, the
    title large, the date on a band of the accent colour, the place, and the association's mark."""
    from PIL import Image, ImageDraw

    width, height = POSTER_SIZE
    rng = random.Random(_seed(seed))  # noqa: S311 - shapes, not secrets  # nosec B311
    top, bottom, accent = (_rgb(value) for value in PALETTES.get(category, DEFAULT_PALETTE))
    mask = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), mask)
    draw = ImageDraw.Draw(image, "RGBA")  # RGBA fills blend with what is under them

    for _ in range(rng.randint(3, 5)):  # big translucent circles, placed by the seed
        radius = rng.randint(width // 6, width // 2)
        x, y = rng.randint(-radius // 2, width), rng.randint(-radius // 2, height * 2 // 3)
        tint = rng.choice((accent, colour))  # the association's colour too: its posters look alike
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(*tint, rng.randint(28, 70)))
    slope = rng.randint(height // 10, height // 4)  # a diagonal band behind the title
    band_top = height * 2 // 5
    draw.polygon([(0, band_top + slope), (width, band_top), (width, band_top + height // 3),
                  (0, band_top + slope + height // 3)], fill=(0, 0, 0, 60))

    margin = width // 12
    small = _font(width // 24)
    draw.text((margin, margin), _printable(association.upper(), small), font=small, fill=(255, 255, 255, 230))
    draw.line((margin, margin + width // 18, margin + width // 5, margin + width // 18), fill=accent, width=5)

    font, lines = _title_lines(title, width - 2 * margin, height * 2 // 5)
    line_height = round(font.size * 1.15)
    y = height * 9 // 20 - len(lines) * line_height // 2 + height // 10
    for line in lines:
        draw.text((margin + 3, y + 3), line, font=font, fill=(0, 0, 0, 90))  # a soft shadow
        draw.text((margin, y), line, font=font, fill="white")
        y += line_height

    date_font = _font(width // 20)
    date_text = _printable(when, date_font)
    date_width = round(date_font.getlength(date_text))
    y += height // 30
    date_height = round(date_font.size)
    draw.rectangle((margin - 12, y - 10, margin + date_width + 12, y + date_height + 14), fill=accent)
    draw.text((margin, y), date_text, font=date_font, fill=top)
    y += date_height + height // 25
    draw.text((margin, y), _printable(place, small), font=small, fill=(255, 255, 255, 220))

    radius = width // 14  # the association's mark, as on its logo
    centre = (width - margin - radius, height - margin - radius)
    _disc(draw, centre, radius, colour, initials(association), rounded=False)
    return _png(image)
