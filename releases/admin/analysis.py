"""Django admin for canary analysis: templates are editable (validated and normalised like the
API does it, each change audited); runs and their measurements are read-only."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from releases import audit
from releases.actors import Actor
from releases.admin.common import ReadOnlyAdmin
from releases.analysis.templates import InvalidTemplate, validate_template
from releases.models import Channel
from releases.models.analysis import AnalysisRun, AnalysisTemplate, Measurement


class AnalysisTemplateForm(forms.ModelForm):
    class Meta:
        model = AnalysisTemplate
        fields = ["name", "description", "spec"]

    def clean_spec(self):
        try:
            return validate_template(self.cleaned_data["spec"])
        except InvalidTemplate as exc:
            errors = exc.details.get("errors") or [{"path": "", "message": exc.message}]
            raise forms.ValidationError(
                [f"{e['path'] or 'template'}: {e['message']}" for e in errors]
            ) from None


@admin.register(AnalysisTemplate)
class AnalysisTemplateAdmin(admin.ModelAdmin):
    form = AnalysisTemplateForm
    list_display = ("name", "description", "updated_at")
    search_fields = ("name", "description")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        actor = Actor.from_request(request, channel=Channel.UI, via="admin")
        action = "analysis_template.update" if change else "analysis_template.create"
        audit.record(actor, action, obj, {"description": obj.description, "spec": obj.spec})


class MeasurementInline(admin.TabularInline):
    model = Measurement
    fields = ("metric", "index", "phase", "taken_at", "value")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AnalysisRun)
class AnalysisRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "deployment", "name", "key", "phase", "started_at", "finished_at")
    list_filter = ("phase",)
    search_fields = ("name", "key")
    inlines = [MeasurementInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]
