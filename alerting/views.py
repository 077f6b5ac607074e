"""Administration > Alerts: where alerts go besides e-mail."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from alerting import service
from alerting.forms import DestinationForm
from alerting.models import Destination
from smtp_settings.permissions import administrator_required


def _address(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


@administrator_required
def alerts(request: HttpRequest) -> HttpResponse:
    form = DestinationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        destination = service.destination_add(
            label=form.cleaned_data["label"],
            url=form.cleaned_data["url"],
            actor=request.user,
            address=_address(request),
        )
        messages.success(request, f"“{destination.label}” ({destination.service}) added.")
        return redirect("alerting:alerts")
    return render(
        request,
        "alerting/alerts.html",
        {
            "form": form,
            "destinations": Destination.objects.all(),
            "recent": service.recent_alerts(),
        },
        status=400 if form.errors else 200,
    )


@administrator_required
@require_POST
def destination_test(request: HttpRequest, destination_id: int) -> HttpResponse:
    destination = Destination.objects.filter(pk=destination_id).first()
    if destination is None:
        raise Http404
    outcome = service.destination_test(
        destination=destination, actor=request.user, address=_address(request)
    )
    if outcome.ok:
        messages.success(
            request, f"Test alert delivered to “{destination.label}”: {outcome.answer}"
        )
    else:
        messages.error(
            request, f"“{destination.label}” did not take the test alert: {outcome.answer}"
        )
    return redirect("alerting:alerts")


@administrator_required
@require_POST
def destination_remove(request: HttpRequest, destination_id: int) -> HttpResponse:
    if not service.destination_remove(
        destination_id=destination_id, actor=request.user, address=_address(request)
    ):
        raise Http404
    messages.success(request, "Destination removed.")
    return redirect("alerting:alerts")
