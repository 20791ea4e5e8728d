"""`ledger_verify`: check the whole ledger's invariants; exit 1 naming every broken account or transfer."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ledger.invariants import ledger_verify


class Command(BaseCommand):
    help = (
        "Verify the ledger: every transfer balances, every account's balance equals the sum of its postings "
        "and its last posting, held amounts match active holds, no account is below its limit, versions are "
        "consistent. Exit status 0 when sound, 1 otherwise (each problem printed to stderr)."
    )

    def handle(self, *args, **options) -> None:
        problems = ledger_verify()
        if not problems:
            self.stdout.write(self.style.SUCCESS("ledger verification PASSED"))
            return
        for problem in problems:
            self.stderr.write(str(problem))
        raise CommandError(f"ledger verification FAILED: {len(problems)} problems", returncode=1)
