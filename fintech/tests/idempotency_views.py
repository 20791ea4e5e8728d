"""A minimal state-changing endpoint for the idempotency tests: each effect is one audit row."""

from __future__ import annotations

import threading

from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasRequiredScopes
from audit.services.events import Actor, audit_event_record
from fintech.idempotency import idempotent_response
from fintech.problems import DomainError
from fintech.urls import urlpatterns as project_urlpatterns

# Tests set this to hold the operation open while another request arrives.
hold_open = threading.Event()
release = threading.Event()
# Tests set this to have the operation demand a fresher login (as a step-up does), clear it to "step up".
step_up_demanded = threading.Event()


class Refused(DomainError):
    status = 422
    code = "probe_refused"
    title = "Refused by the probe"


class DependencyDown(DomainError):
    status = 503
    code = "probe_dependency_down"
    title = "A dependency of the probe is down"


class StepUpDemanded(DomainError):
    status = 401
    code = "probe_step_up_required"
    title = "The probe wants a recent second factor"


class ProbeApi(APIView):
    required_scopes = ["transfers:write"]
    permission_classes = [HasRequiredScopes]

    def post(self, request):
        def operation():
            audit_event_record(
                event_type="probe.effect",
                outcome="success",
                actor=Actor.from_request(request),
                payload={"amount": request.data.get("amount")},
            )
            if hold_open.is_set():
                release.wait(10)
            if request.data.get("refuse"):
                raise Refused("Not today.")
            if request.data.get("dependency_down"):
                raise DependencyDown()
            if step_up_demanded.is_set():
                raise StepUpDemanded(headers={"WWW-Authenticate": 'Bearer error="insufficient_user_authentication"'})
            if request.data.get("explode"):
                raise RuntimeError("boom")
            return 201, {"accepted": request.data.get("amount")}

        return idempotent_response(request, request.data, operation)

    def get(self, request):
        return Response({})


urlpatterns = [path("v1/probe", ProbeApi.as_view()), path("", include(project_urlpatterns))]
