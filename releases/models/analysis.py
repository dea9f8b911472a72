"""Canary analysis: templates (what to measure and how to judge it), runs (one analysis of one
deployment) and measurements (what each metric looked like at each look, with its working).

``releases.analysis.runs`` creates and advances runs; the pure judge is ``strategies.analysis``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class AnalysisTemplate(models.Model):
    """A named, reusable analysis: ``spec`` is normalised by ``strategies.analysis.template``
    (every default filled in), so what is stored is exactly what will run."""

    name = models.SlugField(unique=True, max_length=63)
    description = models.TextField(blank=True)
    spec = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class AnalysisPhase(models.TextChoices):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # the metrics could not be read: aborts like a failure
    INCONCLUSIVE = "inconclusive"  # a person decides


ANALYSIS_DONE = (
    AnalysisPhase.PASSED,
    AnalysisPhase.FAILED,
    AnalysisPhase.ERROR,
    AnalysisPhase.INCONCLUSIVE,
)


class AnalysisRun(models.Model):
    """One analysis of one deployment, started by a step (``key`` "step-3"), in the background
    ("background"), around a blue-green promotion ("pre-promotion", "post-promotion") or after a
    rolling batch ("batch-2"). ``spec`` is the template as it was, its arguments bound."""

    deployment = models.ForeignKey(
        "releases.Deployment", on_delete=models.CASCADE, related_name="analysis_runs"
    )
    template = models.ForeignKey(
        AnalysisTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    name = models.CharField(max_length=63)  # the template's name when the run started
    key = models.CharField(max_length=63)
    step_index = models.IntegerField(null=True, blank=True)
    args = models.JSONField(default=dict, blank=True)
    spec = models.JSONField()
    phase = models.CharField(
        max_length=16, choices=AnalysisPhase.choices, default=AnalysisPhase.RUNNING
    )
    reason = models.TextField(blank=True)
    score = models.JSONField(null=True, blank=True)
    # per metric: {"window_start": unix s, "cursor": provider cursor}; see strategies.analysis.run
    state = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict, blank=True)  # per metric counts (Verdict.metrics)
    next_at = models.DateTimeField(null=True, blank=True)
    stopped = models.BooleanField(default=False)
    # bumped on every write; a write checks the value it read (two ticks never both record)
    version = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "key"],
                condition=Q(phase="running"),
                name="one_running_analysis_per_key",
            )
        ]
        indexes = [models.Index(fields=["deployment", "phase"], name="analysis_by_deployment")]

    def __str__(self):
        return f"{self.name} ({self.key}) for deployment {self.deployment_id}: {self.phase}"

    @property
    def decision(self) -> str:
        return {
            AnalysisPhase.RUNNING: "running",
            AnalysisPhase.PASSED: "pass",
            AnalysisPhase.FAILED: "fail",
            AnalysisPhase.ERROR: "fail",
            AnalysisPhase.INCONCLUSIVE: "inconclusive",
        }[self.phase]


class Measurement(models.Model):
    """One look at one metric: ``value`` is ``strategies.analysis.classify``'s result (baseline
    and canary count/mean/p50/p95/p99, the interval, the effect, the test, the decision, why)."""

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="measurements")
    metric = models.CharField(max_length=63)
    index = models.PositiveIntegerField()
    phase = models.CharField(max_length=16)  # successful | failed | inconclusive | error
    value = models.JSONField()
    window_start = models.DateTimeField(null=True, blank=True)
    taken_at = models.DateTimeField()

    class Meta:
        ordering = ["run", "metric", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "metric", "index"], name="one_measurement_per_index"
            )
        ]

    def __str__(self):
        return f"{self.metric} #{self.index}: {self.phase}"
