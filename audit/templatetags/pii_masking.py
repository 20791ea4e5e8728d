"""`{{ user.email|email_masked }}`: the admin's one email mask (`audit.masking.email_masked`) in templates.

Django's own admin templates print `user.get_username`, which is the email
here; the project's overrides (templates/admin/base_site.html,
object_history.html) print it through this filter instead.
"""

from django import template

from audit.masking import email_masked as _email_masked

register = template.Library()


@register.filter
def email_masked(email: str | None) -> str:
    return _email_masked(email)
