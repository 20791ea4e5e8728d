"""OpenAPI pieces every app's views share: the problem-details schema and per-status error responses.

An operation lists every status it can answer; each error status documents
the RFC 9457 shape (`fintech.problems`) and the stable codes it may carry,
so a client can generate its error handling from the schema.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from fintech.problems import PROBLEM_CONTENT_TYPE


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, with the platform's stable `code` and the request id."""

    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField(help_text="stable; clients branch on it")
    instance = serializers.CharField(required=False)
    request_id = serializers.CharField(required=False, allow_null=True)
    errors = FieldErrorSerializer(many=True, required=False, help_text="field validation errors (400)")


def problem(description: str) -> OpenApiResponse:
    """One documented error status: what it means and which codes it carries."""
    return OpenApiResponse(response=ProblemSerializer, description=f"{PROBLEM_CONTENT_TYPE}: {description}")


def problems(**by_status: str) -> dict[int, OpenApiResponse]:
    """`problems(s404="account_not_found", ...)` -> {404: problem(...)}; keys are `s` + the status."""
    return {int(key.lstrip("s")): problem(text) for key, text in by_status.items()}


__all__ = ["ProblemSerializer", "inline_serializer", "problem", "problems"]
