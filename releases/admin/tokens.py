"""API tokens in the admin: created through ``releases.governance.tokens`` (the secret is shown
once, in a message), revoked as an admin action; never edited."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from releases.admin.common import admin_actor
from releases.governance import tokens
from releases.models import (
    ApiToken,
    Environment,
    Service,
)


def _slugs(model, help_text: str) -> forms.ModelMultipleChoiceField:
    """A token's limit to some environments or services, picked by slug (stored as slugs)."""
    return forms.ModelMultipleChoiceField(
        queryset=model.objects.all(),
        to_field_name="slug",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=help_text,
    )


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(name, f"{name}: {text}") for name, text in tokens.SCOPES.items()],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None: the token may do whatever its user may.",
    )
    environments = _slugs(Environment, "None: wherever its user's roles reach.")
    services = _slugs(Service, "None: every service.")

    class Meta:
        model = ApiToken
        fields = ("user", "name", "scopes", "environments", "services", "expires_at")

    def clean_environments(self):  # stored as slugs
        return [e.slug for e in self.cleaned_data.get("environments") or ()]

    def clean_services(self):
        return [s.slug for s in self.cleaned_data.get("services") or ()]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Adding a token creates it through ``releases.governance.tokens`` and shows the secret
    once."""

    list_display = ("name", "prefix", "user", "scopes", "status", "expires_at", "last_used_at")
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username")
    actions = ["revoke_tokens"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":  # a token acts as its user: only for yourself here
            kwargs["queryset"] = db_field.related_model.objects.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name", "scopes", "environments", "services", "expires_at")
        return (
            "name",
            "user",
            "prefix",
            "scopes",
            "environments",
            "services",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "last_used_from",
            "created_at",
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return [f for f in self.get_fields(request, obj) if f != "name"]

    @admin.display(description="status")
    def status(self, obj):
        return tokens.status(obj)

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        row, token = tokens.create(
            form.cleaned_data["user"],
            form.cleaned_data["name"],
            scopes=form.cleaned_data.get("scopes") or (),
            environments=form.cleaned_data.get("environments") or (),
            services=form.cleaned_data.get("services") or (),
            expires_at=form.cleaned_data.get("expires_at"),
            actor=admin_actor(request),
        )
        for field in ApiToken._meta.concrete_fields:  # the admin logs and redirects with obj
            setattr(obj, field.attname, getattr(row, field.attname))
        obj._state.adding = False
        messages.warning(
            request,
            f"The token {tokens.display(row)} is {token} -- copy it now: it is not shown again.",
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke_tokens(self, request, queryset):
        for row in queryset:
            tokens.revoke(row.prefix, actor=admin_actor(request))
        self.message_user(request, f"Revoked {queryset.count()} token(s).")
