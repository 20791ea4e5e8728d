"""`ledger_verify`: check the whole ledger's invariants; exit 1 naming every broken row."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ledger.invariants import ledger_verification


class Command(BaseCommand):
    help = (
        "Verify the whole ledger in one snapshot: every transfer balances and matches its postings; every "
        "account's balance equals the sum of its postings and its last posting, with consistent versions; held "
        "amounts match active holds; no account is below its limit; reversals and captures add up; every spend "
        "counter (daily limit) equals the movements counted on its day. Prints how many accounts, transfers, "
        "postings, holds and spend counters it checked. Exit status 0 when sound, 1 otherwise (each problem "
        "printed to stderr). Takes no arguments."
    )

    def handle(self, *args, **options) -> None:
        verification = ledger_verification()
        checked = ", ".join(f"{count:,} {name}" for name, count in verification.extent.items())
        self.stdout.write(f"checked {checked}")
        if not verification.problems:
            self.stdout.write(self.style.SUCCESS("ledger verification PASSED"))
            return
        for problem in verification.problems:
            self.stderr.write(str(problem))
        raise CommandError(f"ledger verification FAILED: {len(verification.problems)} problems", returncode=1)
