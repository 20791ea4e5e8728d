"""`card_numbers_find`: report stored free text holding a card number; exit 1 when there is any.

Free text is refused when it holds a card number (`fintech.free_text`), but
rows written before that rule, or by a path around it, may still hold one.
This lists them by table, row id and column, the card masked as brand and
last four (never the number), so an operator can open an incident and purge
or redact them by their own procedure. Read-only; safe to run at any time.
"""

from __future__ import annotations

from collections import Counter

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ledger.free_text_scan import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, TABLES, stored_card_numbers

DEFAULT_MAX_LISTED = 1000


class Command(BaseCommand):
    help = (
        "Find card numbers (the vault's rule: known brand prefix and length, Luhn) stored in free text: "
        "transfer and hold references, outbox and audit payloads, stored idempotent responses, partner API key "
        "names and revoke reasons, Idempotency-Keys, rule names, review cases' reasons and decisions. "
        "Prints table, row id, column and the card masked (brand, last four); "
        "exit status 0 when none is found, 1 otherwise."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--table",
            action="append",
            choices=TABLES,
            dest="tables",
            help="scan only this table; repeat for several (default: every table listed in the choices)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"rows read per query, 1-{MAX_BATCH_SIZE}; bounds memory (default: %(default)s)",
        )
        parser.add_argument(
            "--max-listed",
            type=int,
            default=DEFAULT_MAX_LISTED,
            help="list at most this many findings, still counting the rest; 0 lists none (default: %(default)s)",
        )

    def handle(self, *args, tables: list[str] | None, batch_size: int, max_listed: int, **options) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be 1-{MAX_BATCH_SIZE}")
        if max_listed < 0:
            raise CommandError("--max-listed must be 0 or more")
        scanned = tuple(dict.fromkeys(tables)) if tables else TABLES
        found: Counter[str] = Counter()
        for finding in stored_card_numbers(tables=scanned, batch_size=batch_size):
            if sum(found.values()) < max_listed:
                self.stdout.write(str(finding))
            found[finding.table] += 1
        if not found:
            self.stdout.write(self.style.SUCCESS(f"no card numbers in the free text of {', '.join(scanned)}"))
            return
        for table, count in found.items():
            self.stdout.write(f"{table}: {count} card number(s)")
        total = sum(found.values())
        raise CommandError(f"{total} card number(s) found in stored free text", returncode=1)
