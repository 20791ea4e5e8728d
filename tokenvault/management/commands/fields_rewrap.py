"""`fields_rewrap`: rewrap every encrypted model field value under the current field KEK, in batches."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand
from fintech.problems import DomainError
from tokenvault.field_keys import MAX_REWRAP_BATCH, fields_rewrap, models_with_encrypted_fields


class Command(OperatorCommand):
    operator_permission = "accounts.manage_encryption_keys"
    help = (
        "Rewrap encrypted field values still under old field KEK versions, model by model in pk order. "
        "Safe to interrupt: rerun with --model LABEL --resume-from LAST_PK." + OPERATOR_CREDENTIALS_HELP
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help=f"rows per transaction (1-{MAX_REWRAP_BATCH}) (default: %(default)s)",
        )
        parser.add_argument(
            "--model", default=None, help='only this model, e.g. "accounts.CustomerProfile" (default: every model)'
        )
        parser.add_argument(
            "--resume-from",
            type=int,
            default=None,
            metavar="PK",
            help="start after this pk (default: from the first row)",
        )

    def handle(self, *args, batch_size: int, model: str | None, resume_from: int | None, **options) -> None:
        targets = models_with_encrypted_fields()
        if model is not None:
            targets = [target for target in targets if target._meta.label_lower == model.lower()]
            if not targets:
                raise CommandError(f"{model} has no encrypted fields")
        elif resume_from is not None:
            raise CommandError("--resume-from needs --model")
        actor = self.operator_authenticate().actor
        for target in targets:
            label, after_pk, rewrapped = target._meta.label, resume_from, 0
            try:
                while True:
                    progress = fields_rewrap(model=target, batch_size=batch_size, after_pk=after_pk, actor=actor)
                    if progress.last_pk is None:
                        break
                    after_pk, rewrapped = progress.last_pk, rewrapped + progress.rewrapped
                    self.stderr.write(f"{label}: {rewrapped} rows rewrapped (last pk {after_pk})")
            except DomainError as error:
                raise CommandError(
                    f"{error.code}: {error.detail} (resume with --model {label} --resume-from {after_pk})"
                ) from None
            self.stdout.write(f"{label}: done, {rewrapped} rows rewrapped")
