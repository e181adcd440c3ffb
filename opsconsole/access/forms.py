"""The sign-in form, refusing further attempts while a username or address is locked out; the
API token form."""

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm

from opsconsole.access.models import Action
from opsconsole.access.throttle import login_locked_out
from opsconsole.clientip import client_ip


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self):
        # The cleaned username (stripped, NFKC-normalised) is the one authenticate() sees and the
        # failed-login events record; the raw one would let "dana " dodge dana's lockout.
        username = (self.cleaned_data.get("username") or "")[:150]
        if not username or not self.cleaned_data.get("password"):
            return super().clean()  # nothing is checked, so no attempt is taken (the form says what is missing)
        if login_locked_out(username, client_ip(self.request)):
            raise forms.ValidationError("Too many failed sign-ins. Wait a few minutes and try again.", code="throttled")
        return super().clean()


class ApiTokenForm(forms.Form):
    """What a new token may do, where, and for how long. Every environment is a box of its own: an
    empty selection is refused rather than read as "everywhere"."""

    name = forms.CharField(
        max_length=100, error_messages={"required": "Give the token a name of at most 100 characters."}
    )
    scopes = forms.MultipleChoiceField(
        choices=Action.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one action the token may perform."},
    )
    all_environments = forms.BooleanField(required=False, label="All environments (including ones added later)")
    environments = forms.ModelMultipleChoiceField(queryset=None, required=False, widget=forms.CheckboxSelectMultiple)
    lifetime_days = forms.IntegerField(min_value=1, required=False, label="Expires after (days)")

    def __init__(self, *args, **kwargs):
        from opsconsole.environments.models import Environment

        super().__init__(*args, **kwargs)
        self.fields["environments"].queryset = Environment.objects.order_by("name")
        self.fields["lifetime_days"].initial = settings.API_TOKEN_DEFAULT_DAYS
        self.fields["lifetime_days"].widget.attrs["max"] = settings.API_TOKEN_MAX_DAYS

    def clean_lifetime_days(self) -> int:
        days = self.cleaned_data["lifetime_days"]
        if days is None:
            return settings.API_TOKEN_DEFAULT_DAYS  # left empty: the default, as the field shows
        if days > settings.API_TOKEN_MAX_DAYS:
            raise forms.ValidationError(
                f"A token may live at most {settings.API_TOKEN_MAX_DAYS} days here (API_TOKEN_MAX_DAYS); "
                f"choose {settings.API_TOKEN_MAX_DAYS} or fewer and make a new token when it runs out.",
                code="too_long",
            )
        return days

    def clean(self):
        cleaned = super().clean()
        if "environments" not in cleaned:
            return cleaned  # an environment that does not exist: its own error says so
        if cleaned.get("all_environments") and cleaned["environments"]:
            raise forms.ValidationError(
                "Tick either All environments or some environments, not both.", code="environments_ambiguous"
            )
        if not cleaned.get("all_environments") and not cleaned["environments"]:
            raise forms.ValidationError(
                "Choose the environments the token may act in, or tick All environments (including ones added later).",
                code="no_environments",
            )
        return cleaned
