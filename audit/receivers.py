"""Signal receivers that turn framework events into audit events (recording only, no business logic)."""

from __future__ import annotations

from auditlog.models import LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from audit.context import current_request
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record


@receiver(user_login_failed, dispatch_uid="audit.login_failed")
def record_login_failure(sender, credentials, request=None, **kwargs) -> None:
    audit_event_record(
        event_type="auth.failed",
        outcome=AuditEvent.Outcome.FAILURE,
        actor=Actor(),
        object_type="login",
        object_id=getattr(getattr(request, "resolver_match", None), "view_name", "") or "",
        request=request,
        payload={"credentials_supplied": sorted(credentials)},  # names only, never values
    )


@receiver(user_logged_in, dispatch_uid="audit.logged_in")
def record_login(sender, request, user, **kwargs) -> None:
    actor = Actor(staff=str(user.public_id)) if user.is_staff else Actor(user=str(user.public_id))
    audit_event_record(
        event_type="auth.login",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        object_type="accounts.user",
        object_id=str(user.public_id),
        request=request,
    )


@receiver(user_logged_out, dispatch_uid="audit.logged_out")
def record_logout(sender, request, user, **kwargs) -> None:
    if user is None:
        return
    actor = Actor(staff=str(user.public_id)) if user.is_staff else Actor(user=str(user.public_id))
    audit_event_record(
        event_type="auth.logout",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        object_type="accounts.user",
        object_id=str(user.public_id),
        request=request,
    )


@receiver(pre_save, sender=LogEntry, dispatch_uid="audit.logentry_actor")
def attribute_model_change(sender, instance: LogEntry, **kwargs) -> None:
    """Actor from the verified credential, address from trusted proxies only, no email copy."""
    request = current_request()
    user = getattr(request, "user", None) if request is not None else None
    if instance.actor is None and user is not None and getattr(user, "is_authenticated", False):
        instance.actor = user
    instance.actor_email = None  # auditlog would copy the actor's email in clear
    instance.remote_addr = getattr(request, "client_ip", None)
    instance.remote_port = None


@receiver(post_save, sender=LogEntry, dispatch_uid="audit.logentry_mirror")
def mirror_model_change(sender, instance: LogEntry, created: bool, **kwargs) -> None:
    """Copy each model change into the sealed trail, so it is tamper-evident too."""
    if not created:
        return
    request = current_request()
    actor = Actor.from_request(request) if request is not None else Actor.system("model-change")
    audit_event_record(
        event_type="model.changed",
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        object_type=f"{instance.content_type.app_label}.{instance.content_type.model}",
        object_id=str(instance.object_pk),
        request=request,
        payload={"action": instance.get_action_display(), "changes": instance.changes or {}},
    )
