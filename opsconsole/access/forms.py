"""The sign-in form, refusing further attempts while a username or address is locked out."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from opsconsole.access.throttle import login_locked_out
from opsconsole.audit.log import client_ip


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self):
        # The cleaned username (stripped, NFKC-normalised) is the one authenticate() sees and the
        # failed-login events record; the raw one would let "dana " dodge dana's lockout.
        username = (self.cleaned_data.get("username") or "")[:150]
        if login_locked_out(username, client_ip(self.request)):
            raise forms.ValidationError("Too many failed sign-ins. Wait a few minutes and try again.", code="throttled")
        return super().clean()
