"""Archives of the trail: export sealed checkpoints to a WORM file, verify one offline, purge what is archived.

A package so that each concern stays small enough to review on its own; the
names below are the ones commands and tests use, so callers need not know
which module holds what.
"""

from audit.services.archives.export import ArchiveError, ExportResult, audit_archive_export
from audit.services.archives.format import ARCHIVE_FORMAT, ArchiveCorrupt, ArchiveMalformed, ArchiveWriter
from audit.services.archives.offline import ArchiveVerification, audit_archive_verify
from audit.services.archives.purge import (
    MAX_PURGE_BATCH_EVENTS,
    PURGE_BATCH_EVENTS,
    PurgeResult,
    audit_events_purge,
    purge_cutoff,
)

__all__ = [
    "ARCHIVE_FORMAT",
    "MAX_PURGE_BATCH_EVENTS",
    "PURGE_BATCH_EVENTS",
    "ArchiveCorrupt",
    "ArchiveError",
    "ArchiveMalformed",
    "ArchiveVerification",
    "ArchiveWriter",
    "ExportResult",
    "PurgeResult",
    "audit_archive_export",
    "audit_archive_verify",
    "audit_events_purge",
    "purge_cutoff",
]
