"""The compliance officers' view of the audit trail: read-only, masked, every unmask recorded.

Every audit table is write-once in the database (triggers refuse UPDATE and
DELETE). The admin says so up front, for superusers too: no add, change or
delete, and no bulk actions, instead of offering a button that ends in a
database error. The only writes made from here go through services: a
`pii.read` event when an officer unmasks an actor, and a verification run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.models import User
from audit.forms import UnmaskActorForm
from audit.masking import email_masked  # the one mask of the admin, also imported from here
from audit.models import (
    AuditArchive,
    AuditCheckpoint,
    AuditEvent,
    AuditSeal,
    AuditSigningKey,
    AuditVerification,
)
from audit.services.events import Actor, audit_event_record, pii_read_record
from audit.services.verification import (
    audit_trail_verify,
    verification_authentic,
    verification_summary,
)
from fintech.admin import ReadOnlyModelAdmin

UNMASK_PERMISSION = "audit.unmask_pii"
HASH_PREFIX_LENGTH = 12
MAX_SEARCH_SEQUENCE_DIGITS = 18  # stays inside a bigint


def emails_by_public_id(public_ids: Iterable[str]) -> dict[str, str]:
    """One query for every user a page of events names; ids that are not UUIDs are skipped."""
    wanted: set[uuid.UUID] = set()
    for public_id in public_ids:
        if not public_id:
            continue
        try:
            wanted.add(uuid.UUID(public_id))
        except ValueError:
            continue
    if not wanted:
        return {}
    return {
        str(public_id): email
        for public_id, email in User.objects.filter(public_id__in=wanted).values_list("public_id", "email")
    }


def _hex(value: bytes | memoryview | None) -> str:
    return bytes(value).hex() if value is not None else ""


class WriteOnceAdmin(ReadOnlyModelAdmin):
    """Viewing needs the model's view permission; adding, changing and deleting are refused to everyone."""

    actions = None  # the only default action is delete_selected
    list_per_page = 50
    show_full_result_count = False  # no second COUNT(*) over a table that only grows
    show_facets = admin.ShowFacets.NEVER

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        # Only the view permission: a stray change permission must not make the trail visible.
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('view', opts)}")

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class ActorKindFilter(admin.SimpleListFilter):
    title = "actor"
    parameter_name = "actor_kind"

    def lookups(self, request, model_admin):
        return [
            ("user", "Customer user"),
            ("staff", "Staff member"),
            ("client", "OAuth client"),
            ("system", "System job"),
            ("none", "Anonymous"),
        ]

    def queryset(self, request, queryset):
        match self.value():
            case "user":
                return queryset.exclude(actor_user="")
            case "staff":
                return queryset.exclude(actor_staff="")
            case "client":
                return queryset.exclude(actor_client="").exclude(actor_client__startswith="system:")
            case "system":
                return queryset.filter(actor_client__startswith="system:")
            case "none":
                return queryset.filter(actor_user="", actor_staff="", actor_client="")
        return queryset


class AuditEventChangeList(ChangeList):
    """Looks up the emails of every actor on the page in one query, not one per row."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        emails = emails_by_public_id(
            public_id for event in self.result_list for public_id in (event.actor_user, event.actor_staff)
        )
        for event in self.result_list:
            event.actor_emails = emails


@admin.register(AuditEvent)
class AuditEventAdmin(WriteOnceAdmin):
    list_display = (
        "id",
        "occurred_at",
        "event_type",
        "outcome",
        "actor",
        "target",
        "request_id",
        "source_ip",
    )
    list_filter = ("event_type", "outcome", ActorKindFilter, "object_type")
    date_hierarchy = "occurred_at"
    ordering = ("-id",)
    # Exact matches only (see get_search_results): the columns are indexed, substrings are not.
    search_fields = ("=request_id", "=object_id", "=actor_user", "=actor_client", "=actor_staff")
    search_help_text = "Exact request id, object id, actor id or sequence number."
    fieldsets = (
        ("Event", {"fields": ("id", "occurred_at", "event_type", "outcome")}),
        ("Actor", {"fields": ("actor_identity", "actor_user", "actor_client", "actor_staff")}),
        ("Object", {"fields": ("object_type", "object_id", "purpose")}),
        ("Origin", {"fields": ("request_id", "source_ip", "user_agent")}),
        ("Payload (masked when written)", {"fields": ("payload_pretty",)}),
    )
    readonly_fields = (
        "id",
        "occurred_at",
        "event_type",
        "outcome",
        "actor_identity",
        "actor_user",
        "actor_client",
        "actor_staff",
        "object_type",
        "object_id",
        "purpose",
        "request_id",
        "source_ip",
        "user_agent",
        "payload_pretty",
    )

    def get_changelist(self, request: HttpRequest, **kwargs):
        return AuditEventChangeList

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = (
            Q(request_id=term) | Q(object_id=term) | Q(actor_user=term) | Q(actor_client=term) | Q(actor_staff=term)
        )
        if term.isdigit() and len(term) <= MAX_SEARCH_SEQUENCE_DIGITS:
            condition |= Q(id=int(term))
        return queryset.filter(condition), False

    def _emails(self, event: AuditEvent) -> dict[str, str]:
        emails = getattr(event, "actor_emails", None)
        if emails is None:  # the detail page: one event, one lookup
            emails = event.actor_emails = emails_by_public_id([event.actor_user, event.actor_staff])
        return emails

    @admin.display(description="actor")
    def actor(self, event: AuditEvent) -> str:
        emails = self._emails(event)
        parts = []
        if event.actor_user:
            parts.append(email_masked(emails.get(event.actor_user)))
        if event.actor_client:
            parts.append(f"client {event.actor_client}")
        if event.actor_staff:
            # With the public id's first block: two colleagues with the same initials stay apart in a list.
            parts.append(f"staff {email_masked(emails.get(event.actor_staff))} ({event.actor_staff[:8]})")
        return ", ".join(parts) or self.get_empty_value_display()

    @admin.display(description="actor identity (masked)")
    def actor_identity(self, event: AuditEvent) -> str:
        return self.actor(event)

    @admin.display(description="object")
    def target(self, event: AuditEvent) -> str:
        if not event.object_type and not event.object_id:
            return self.get_empty_value_display()
        return f"{event.object_type} {event.object_id}".strip()

    @admin.display(description="payload")
    def payload_pretty(self, event: AuditEvent) -> str:
        text = json.dumps(event.payload, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre style="white-space: pre-wrap; margin: 0;">{}</pre>', text)

    def get_urls(self):
        opts = self.opts
        custom = [
            path(
                "<path:object_id>/unmask/",
                self.admin_site.admin_view(self.unmask_view),
                name=f"{opts.app_label}_{opts.model_name}_unmask",
            ),
        ]
        return custom + super().get_urls()  # first: "<path:object_id>/" would swallow ".../unmask"

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_unmask": request.user.has_perm(UNMASK_PERMISSION),
            "unmask_form": UnmaskActorForm(),
            "unmask_url": reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_unmask",
                args=[quote(object_id)],
                current_app=self.admin_site.name,
            ),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def unmask_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Show the clear email of an event's actor, after recording who looked, why and on what ground.

        The email goes into this one response only: never into a URL, a
        message (stored in the session) or a log line. The page is not cached
        (admin_view adds never_cache).
        """
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (self.has_view_permission(request) and request.user.has_perm(UNMASK_PERMISSION)):
            raise PermissionDenied
        event = self.get_object(request, unquote(object_id))
        if event is None or not event.actor_user:
            raise Http404("No event with a user actor here.")
        form = UnmaskActorForm(request.POST)
        context = {
            **self.admin_site.each_context(request),
            "title": "Unmask actor identity",
            "opts": self.opts,
            "original": event,
            "form": form,
            "masked_actor": self.actor(event),
            "unmask_url": request.path,
            "change_url": reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                args=[quote(event.pk)],
                current_app=self.admin_site.name,
            ),
        }
        if form.is_valid():
            email = self._actor_email_for_unmask(event)
            if email is None:
                context["actor_missing"] = True
            else:
                # Recorded before it is shown: if the record fails, nothing is revealed.
                context["pii_read_event"] = pii_read_record(
                    actor=Actor(staff=str(request.user.public_id)),
                    object_type="accounts.user",
                    object_id=event.actor_user,
                    fields=["email"],
                    purpose=form.cleaned_data["purpose"],
                    request=request,
                    reason=form.cleaned_data["reason"],
                )
                context["unmasked_email"] = email
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/audit/auditevent/unmask.html", context)

    @staticmethod
    def _actor_email_for_unmask(event: AuditEvent) -> str | None:
        return emails_by_public_id([event.actor_user]).get(event.actor_user)


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(WriteOnceAdmin):
    list_display = (
        "id",
        "sealed_at",
        "first_event_id",
        "last_event_id",
        "event_count",
        "merkle_root_short",
        "key_id",
    )
    ordering = ("-id",)
    search_fields = ("=checkpoint_hash", "=merkle_root")
    fields = (
        "id",
        "sealed_at",
        "first_event_id",
        "last_event_id",
        "event_count",
        "merkle_root",
        "previous_hash",
        "checkpoint_hash",
        "key_id",
        "signature_hex",
        "drained_below_xact_id",
    )
    readonly_fields = fields

    @admin.display(description="merkle root")
    def merkle_root_short(self, checkpoint: AuditCheckpoint) -> str:
        return f"{checkpoint.merkle_root[:HASH_PREFIX_LENGTH]}…"

    @admin.display(description="key id")
    def key_id(self, checkpoint: AuditCheckpoint) -> str:
        return checkpoint.signing_key_id  # the column itself: no join per row

    @admin.display(description="signature")
    def signature_hex(self, checkpoint: AuditCheckpoint) -> str:
        return _hex(checkpoint.signature)

    def get_urls(self):
        opts = self.opts
        custom = [
            path(
                "verify/",
                self.admin_site.admin_view(self.verify_view),
                name=f"{opts.app_label}_{opts.model_name}_verify",
            ),
        ]
        return custom + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context=None):
        latest_checkpoint = AuditCheckpoint.objects.order_by("-id").only("id", "merkle_root", "sealed_at").first()
        latest_verification, forged_verifications = verification_summary()
        extra_context = {
            **(extra_context or {}),
            "audit_summary": {
                "last_sealed_event_id": AuditCheckpoint.objects.aggregate(value=Max("last_event_id"))["value"],
                "latest_checkpoint": latest_checkpoint,
                "latest_verification": latest_verification,
                "forged_verifications": forged_verifications,
            },
            "can_verify": self.has_view_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        """Run a full verification and record it, as the hourly task does.

        Only the sealer's login may record a result (issue 12), so a web
        process hands the run to the sealer (the worker) and says so.
        """
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist", current_app=self.admin_site.name
        )
        if not settings.AUDIT_SEALER_PROCESS:
            from audit.tasks import verify_trail

            with transaction.atomic():  # the request is on record (named, with its address) before the run
                audit_event_record(
                    event_type="audit.verification_requested",
                    outcome=AuditEvent.Outcome.SUCCESS,
                    actor=Actor(staff=str(request.user.public_id)),
                    object_type="audit.verification",
                    request=request,
                )
            verify_trail.delay()
            messages.info(request, "Verification queued: its result appears here when the sealer has finished it.")
            return HttpResponseRedirect(changelist)
        report = audit_trail_verify(actor=Actor(staff=str(request.user.public_id)))
        if report.passed:
            messages.success(
                request,
                f"Verification passed: {report.checkpoints_checked} checkpoints and "
                f"{report.events_checked} events checked.",
            )
        else:
            messages.error(
                request,
                f"Verification FAILED: {len(report.problems)} problems, "
                f"first bad sequence number {report.first_bad_event_id}.",
            )
        return HttpResponseRedirect(changelist)


@admin.register(AuditVerification)
class AuditVerificationAdmin(WriteOnceAdmin):
    list_display = (
        "id", "verified_at", "passed", "authentic", "checkpoints_checked", "events_checked", "first_bad_event_id",
    )  # fmt: skip
    list_filter = ("passed",)
    ordering = ("-id",)
    fields = (
        "id", "verified_at", "passed", "authentic", "checkpoints_checked", "events_checked", "first_bad_event_id",
        "detail",
    )  # fmt: skip
    readonly_fields = fields

    @admin.display(description="written by the application", boolean=True)
    def authentic(self, verification: AuditVerification) -> bool:
        """False: the row fails its MAC, so it was written with the database login alone (issue 12)."""
        return verification_authentic(verification)


@admin.register(AuditArchive)
class AuditArchiveAdmin(WriteOnceAdmin):
    list_display = (
        "id",
        "created_at",
        "file_name",
        "first_checkpoint_id",
        "last_checkpoint_id",
        "event_count",
        "created_by",
    )
    ordering = ("-id",)
    search_fields = ("=file_name", "=sha256")
    fields = (
        "id",
        "created_at",
        "file_name",
        "sha256",
        "first_checkpoint_id",
        "last_checkpoint_id",
        "event_count",
        "created_by",
    )
    readonly_fields = fields


@admin.register(AuditSeal)
class AuditSealAdmin(WriteOnceAdmin):
    list_display = ("event_id", "checkpoint_number", "leaf_hash")
    ordering = ("-event_id",)
    search_fields = ("=event_id",)
    search_help_text = "Exact sequence number of the event."
    fields = ("event_id", "checkpoint_number", "leaf_hash")
    readonly_fields = fields

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        if not (term.isdigit() and len(term) <= MAX_SEARCH_SEQUENCE_DIGITS):
            return queryset.none(), False
        return queryset.filter(event_id=int(term)), False

    @admin.display(description="checkpoint")
    def checkpoint_number(self, seal: AuditSeal) -> int:
        return seal.checkpoint_id  # the column itself: no join per row


@admin.register(AuditSigningKey)
class AuditSigningKeyAdmin(WriteOnceAdmin):
    list_display = ("key_id", "created_at")
    ordering = ("-created_at",)
    fields = ("key_id", "created_at", "public_key_hex")
    readonly_fields = fields

    @admin.display(description="public key (Ed25519, hex)")
    def public_key_hex(self, key: AuditSigningKey) -> str:
        return _hex(key.public_key)
