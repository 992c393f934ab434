"""The webhook pages' form. It only shapes the input; the services check it and name the field."""

from django import forms

from annotation.forms import ServiceErrorMixin

from .models import EventType


class EndpointForm(ServiceErrorMixin, forms.Form):
    url = forms.CharField(
        label="URL", max_length=2000, widget=forms.URLInput(attrs={"placeholder": "https://hooks.example.org/feedbackloop"}),
        help_text="http or https. Loopback, private and link-local addresses are refused.",
    )
    description = forms.CharField(required=False, max_length=500)
    events = forms.MultipleChoiceField(
        choices=[(value, f"{value} — {label}") for value, label in EventType.choices],
        widget=forms.CheckboxSelectMultiple,
    )
    active = forms.BooleanField(required=False, initial=True, help_text="Inactive endpoints receive nothing.")
