"""Deliberately empty: vault records are not browsable in the Django admin.

The admin runs with the main site's staff sessions; vault access goes through
`tokenvault.services` only, where every clear-text read is audited.
"""
