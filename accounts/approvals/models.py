"""Four eyes (maker-checker): a change one staff member asks for and a different one approves (ADR 0015).

Imported by `accounts.models` so Django finds the models; nothing here imports
higher apps. The kinds of change (what a request may ask for, who may approve
it, how it is applied) register themselves in `accounts.approvals.registry`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Lower, Now

SUMMARY_MAX_LENGTH = 300
REASON_MAX_LENGTH = 500


class ApprovalRequest(models.Model):
    """One change waiting for, or decided by, a second person.

    `change` is the exact change (canonical JSON, no PII); `change_hash` binds
    the kind, the target, the change and the target's state when it was asked
    for (`target_state_hash`): an approver approves that hash, and the request
    is void if the target no longer hashes the same when it is applied.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPLIED = "applied", "Applied"
        REJECTED = "rejected", "Rejected"
        VOID = "void", "Void (the target changed or the change was refused)"
        EXPIRED = "expired", "Expired"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=64)
    summary = models.CharField(max_length=SUMMARY_MAX_LENGTH)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    change = models.JSONField()
    target_state_hash = models.CharField(max_length=64)
    change_hash = models.CharField(max_length=64)
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approval_requests_about",
        help_text="the person whose access or identity the change is about; may not approve it",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests_made"
    )
    request_reason = models.CharField(max_length=REASON_MAX_LENGTH)
    requested_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approval_requests_decided",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=REASON_MAX_LENGTH, blank=True)
    result = models.JSONField(default=dict, blank=True)
    # HMAC-SHA256 (hex) of the request as asked, under a key the database does not hold (issue 12): checked
    # before anyone approves it. That it was applied is `AccessChangeAuthorization`'s to prove.
    request_mac = models.CharField(max_length=64, blank=True, db_default="", editable=False)

    class Meta:
        # Who may approve which kind (accounts/roles.py gives them to roles); asking needs the domain's own permission.
        permissions = [
            ("approve_access_change", "Can approve staff access changes (roles, flags, permissions, second factor)"),
            ("approve_money_change", "Can approve money changes (large deposits, limits, rules)"),
            ("approve_customer_change", "Can approve customer changes (unblock, tier, second-factor recovery)"),
            ("approve_client_change", "Can approve partner client policy changes"),
            ("deposit_from_funding", "Can deposit from platform funding (alone only up to the four-eyes amounts)"),
            ("manage_encryption_keys", "Can rotate, rewrap and (with a second person) retire field encryption keys"),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="accounts_approval_status_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "applied", "rejected", "void", "expired"]),
                name="accounts_approval_status_valid",
            ),
            # The database, not only the service, refuses a requester or subject deciding their own request.
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True) | ~models.Q(decided_by=models.F("requested_by")),
                name="accounts_approval_not_by_requester",
            ),
            models.CheckConstraint(
                condition=models.Q(decided_by__isnull=True)
                | models.Q(subject__isnull=True)
                | ~models.Q(decided_by=models.F("subject")),
                name="accounts_approval_not_by_subject",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="applied") | models.Q(decided_by__isnull=False, decided_at__isnull=False),
                name="accounts_approval_applied_names_approver",
            ),
            models.CheckConstraint(
                condition=models.Q(change_hash__regex=r"^[0-9a-f]{64}$")
                & models.Q(target_state_hash__regex=r"^[0-9a-f]{64}$"),
                name="accounts_approval_hashes_sha256_hex",
            ),
        ]

    def __str__(self) -> str:
        return f"request {self.public_id} ({self.kind})"


class ApprovalDecision(models.Model):
    """That a request was decided: one row per request, ever (issue 12, insider review).

    Write-once for the runtime role (INSERT and SELECT only, `AccountsConfig.write_once_models`) and unique per
    request, so a request set back to `pending` with the database login cannot be approved a second time:
    an applied deposit cannot be replayed into a second deposit.
    """

    approval_public_id = models.UUIDField(unique=True)
    status = models.CharField(max_length=16)
    decided_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"request {self.approval_public_id} {self.status}"


class StaffInvitation(models.Model):
    """A single-use link (24 h) with which a staff member sets their password and enrols TOTP, in one flow.

    `join`: a new staff member; the user is created on acceptance, with the
    roles, under the approval request that invited them. `reenrol`: an
    existing staff member whose second factor was reset (four eyes) sets a new
    password and authenticator. Only the SHA-256 of the link's secret is stored.
    """

    class Purpose(models.TextChoices):
        JOIN = "join", "Join as staff"
        REENROL = "reenrol", "Re-enrol after a second-factor reset"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.JOIN)
    email = models.EmailField(max_length=254)
    roles = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    approval = models.ForeignKey(
        ApprovalRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="staff_invitations"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="staff_invitations",
        help_text="reenrol: the staff member; join: set when accepted",
    )
    # HMAC-SHA256 (hex) of the invitation as issued, under a key the database does not hold (issue 12): a link
    # written with the database login alone (a join riding any approval, a re-enrolment taking over a staff
    # account) is refused at acceptance.
    mac = models.CharField(max_length=64, blank=True, db_default="", editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(email=Lower("email")), name="accounts_invitation_email_lower"),
            models.CheckConstraint(
                condition=models.Q(token_hash__regex=r"^[0-9a-f]{64}$"),  # noqa: S106  # nosec B106 - a hash shape
                name="accounts_invitation_token_sha256",
            ),
            models.CheckConstraint(
                condition=models.Q(purpose__in=["join", "reenrol"]), name="accounts_invitation_purpose_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(accepted_at__isnull=True) | models.Q(user__isnull=False),
                name="accounts_invitation_accepted_names_user",
            ),
            models.CheckConstraint(
                condition=~models.Q(purpose="reenrol") | models.Q(user__isnull=False),
                name="accounts_invitation_reenrol_names_user",
            ),
        ]

    def __str__(self) -> str:
        return f"staff invitation {self.public_id}"
