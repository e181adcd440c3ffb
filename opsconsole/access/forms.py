"""The sign-in form, refusing further attempts while a username or address is locked out."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from opsconsole.access.throttle import login_locked_out


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self):
        username = (self.data.get("username") or "")[:150]
        ip = self.request.META.get("REMOTE_ADDR") if self.request else None
        if login_locked_out(username, ip):
            raise forms.ValidationError("Too many failed sign-ins. Wait a few minutes and try again.", code="throttled")
        return super().clean()
