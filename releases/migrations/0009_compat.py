"""Seed the analysis template Flagger's built-in metrics run as (``strategies.flagger``)."""

from django.db import migrations


def seed(apps, schema_editor):
    from strategies.analysis.template import normalise
    from strategies.flagger import (
        BUILTIN_TEMPLATE,
        BUILTIN_TEMPLATE_DESCRIPTION,
        BUILTIN_TEMPLATE_SPEC,
    )

    AnalysisTemplate = apps.get_model("releases", "AnalysisTemplate")
    AnalysisTemplate.objects.get_or_create(
        name=BUILTIN_TEMPLATE,
        defaults={
            "description": BUILTIN_TEMPLATE_DESCRIPTION,
            "spec": normalise(BUILTIN_TEMPLATE_SPEC),
        },
    )


class Migration(migrations.Migration):
    dependencies = [("releases", "0008_merge_20261201_1905")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
