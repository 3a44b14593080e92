"""The catalog's form: the home page's filters, read from the query string."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from events.catalog.categories import CATEGORIES
from events.catalog.queries import EventFilters


class EventFilterForm(forms.Form):
    """The home page's filters, read from the query string (so a filtered view can be shared)."""

    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    # A slug, checked for shape only, so the list query need not wait for the associations menu; an
    # unknown slug simply matches nothing.
    association = forms.SlugField(label=_("Association"), required=False, max_length=80)
    category = forms.ChoiceField(label=_("Category"), required=False)
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    has_seats = forms.BooleanField(label=_("Seats left only"), required=False)

    def __init__(self, data) -> None:
        super().__init__(data)
        self.fields["category"].choices = [("", _("All categories")), *CATEGORIES.items()]

    def raw_values(self) -> dict[str, str]:
        """What the visitor typed, to show it back in the hand-written filter form."""
        data = self.data if self.is_bound else {}
        return {name: str(data.get(name, ""))[:200] for name in self.fields}

    @staticmethod
    def category_choices() -> list[tuple[str, str]]:
        return [(slug, str(label)) for slug, label in CATEGORIES.items()]

    def clean_q(self) -> str:
        # Control characters never reach the SQL (they would only make the search fail).
        return "".join(char for char in self.cleaned_data["q"] if char.isprintable()).strip()

    def _sane_date(self, name: str):
        value = self.cleaned_data.get(name)
        if value is not None and not (2000 <= value.year <= 2100):
            raise forms.ValidationError(_("Choose a date between 2000 and 2100."))
        return value

    def clean_date_from(self):
        return self._sane_date("date_from")

    def clean_date_to(self):
        return self._sane_date("date_to")

    def clean(self):
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_to < date_from:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def filters(self) -> EventFilters:
        """The valid filters; a field with an error is left out (and its error shown), never a 500."""
        if not self.is_bound:
            return EventFilters()
        self.is_valid()
        data = self.cleaned_data
        return EventFilters(
            association=data.get("association") or None,
            category=data.get("category") or None,
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            has_seats=bool(data.get("has_seats")),
            query=data.get("q") or None,
        )
