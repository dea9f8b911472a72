"""Canary analysis, pure: no Django, no integrations.

- ``series``: one arm's data (values with weights, request counts, a latency histogram) and its
  description (count, mean, p50/p95/p99), NaN handling and IQR outlier removal;
- ``mannwhitney``: the Mann-Whitney U test with the Hodges-Lehmann shift and its confidence
  interval (implemented here; the tests check it against ``scipy.stats``);
- ``sequential``: the always-valid test for error rates (a mixture SPRT on the two proportions),
  and its mirror for non-inferiority by ratio;
- ``quantile``: the always-valid test for latency (the same conditional test on the requests
  slower than the baseline's quantiles) and its non-inferiority check at a percentile;
- ``expr``: the small, safe expression language of success/failure conditions;
- ``classify``: one metric measurement -> a result that explains itself;
- ``score``: weighted groups -> a score 0-100;
- ``template``: analysis templates (validation, defaults, arguments);
- ``run``: Argo Rollouts' semantics over the measurements of a run -> its verdict.

``docs/analysis.md`` describes the method, its parameters and their defaults.
"""
