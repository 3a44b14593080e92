"""The event categories: a fixed list in code (slug → translatable label)."""

from django.utils.translation import gettext_lazy as _

CATEGORIES: dict[str, str] = {
    "party": _("Party"),
    "sport": _("Sport"),
    "culture": _("Culture"),
    "conference": _("Conference"),
    "career": _("Career"),
    "workshop": _("Workshop"),
    "charity": _("Charity"),
    "trip": _("Trip"),
    "gaming": _("Games"),
    "other": _("Other"),
}


def category_label(slug: str) -> str:
    return str(CATEGORIES.get(slug, slug))
