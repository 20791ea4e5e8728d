"""Account views: open, list, balances, entries (with balance as of an instant), CSV statements."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from fintech.idempotency import IDEMPOTENCY_PARAMETER, idempotent_response
from ledger import selectors, services
from ledger.apis.base import CustomerApi, CustomerObjectApi, account_out, posting_out
from ledger.currencies import format_amount

# --- accounts -------------------------------------------------------------------------------


class AccountsPagination(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = ("id",)


class AccountListCreateApi(CustomerApi):
    required_scopes = {"GET": ["accounts:read"], "POST": ["accounts:write"]}

    class AccountOpenInput(serializers.Serializer):
        currency = serializers.CharField(min_length=3, max_length=3)

    @extend_schema(
        operation_id="accounts_list",
        summary="The caller's accounts, oldest first, a page at a time (`next`, `previous`: cursor links)",
        parameters=[OpenApiParameter("page_size", int, description="1 to 200, default 50")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        paginator = AccountsPagination()
        page = paginator.paginate_queryset(selectors.accounts_list(owner=request.user), request, view=self)
        return paginator.get_paginated_response([account_out(a) for a in page])

    @extend_schema(
        summary="Open a deposit account in a currency (at most LEDGER_MAX_ACCOUNTS_PER_CUSTOMER not closed: 422"
        " `account_limit_reached` beyond)",
        request=AccountOpenInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        data = self.AccountOpenInput(data=request.data)
        data.is_valid(raise_exception=True)

        def operation():
            account = services.account_open(
                owner=request.user, currency=data.validated_data["currency"].upper(), actor=self.actor()
            )
            return 201, account_out(account)

        return idempotent_response(request, request.data, operation)


class AccountDetailApi(CustomerObjectApi):
    required_scopes = ["accounts:read"]

    @extend_schema(summary="Balances of one of the caller's accounts", responses={200: OpenApiTypes.OBJECT})
    def get(self, request, account_id):
        return Response(account_out(selectors.account_get(owner=request.user, public_id=account_id)))


class EntriesPagination(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = ("-created_at", "-id")


class AccountEntriesApi(CustomerObjectApi):
    required_scopes = ["accounts:read"]

    @extend_schema(
        summary="Postings of an account, newest first; `as_of` adds the balance at that instant",
        parameters=[OpenApiParameter("as_of", str, description="ISO 8601 instant")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, account_id):
        account = selectors.account_get(owner=request.user, public_id=account_id)
        as_of = _instant(request.query_params.get("as_of"), "as_of")
        entries = selectors.account_entries(account=account, as_of=as_of).select_related("transfer")
        paginator = EntriesPagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        response = paginator.get_paginated_response([posting_out(p) for p in page])
        if as_of is not None:
            balance = selectors.account_balance_as_of(account=account, at=as_of)
            response.data["balance_as_of"] = {
                "at": as_of.isoformat(),
                "balance": format_amount(balance, account.currency),
            }
        return response


class AccountStatementCsvApi(CustomerObjectApi):
    required_scopes = ["accounts:read"]

    @extend_schema(
        summary="Statement as CSV (default: the last 31 days)",
        parameters=[OpenApiParameter("from", str), OpenApiParameter("to", str)],
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request, account_id):
        account = selectors.account_get(owner=request.user, public_id=account_id)
        end = _instant(request.query_params.get("to"), "to") or timezone.now()
        start = _instant(request.query_params.get("from"), "from") or end - timedelta(days=31)
        if not start < end or end - start > timedelta(days=366):
            raise serializers.ValidationError({"from": ["The period must be positive and at most 366 days."]})
        rows = selectors.statement_rows(account=account, start=start, end=end)
        response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="statement-{account.public_id}.csv"'
        return response


def _csv_lines(rows):
    buffer = io.StringIO()
    writer = None
    for row in rows:
        if writer is None:
            writer = csv.DictWriter(buffer, fieldnames=list(row))
            writer.writeheader()
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _instant(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise serializers.ValidationError({field: ["Use an ISO 8601 instant, e.g. 2026-11-23T12:00:00Z."]}) from error
    if timezone.is_naive(moment):
        raise serializers.ValidationError({field: ["Give the time zone, e.g. a trailing Z for UTC."]})
    return moment
