"""The AWS providers, on boto3: ECS services behind an Application Load Balancer (``aws-ecs``),
Lambda aliases (``aws-lambda``) and Route 53 weighted records (``aws-route53``).

- ``session``: clients with an explicit botocore config (region, standard retries, connect/read
  timeouts) and credentials from the default chain, a named profile or a role to assume (STS);
- ``errors``: ``ClientError`` and botocore's own errors as ``IntegrationError``;
- ``config``: each provider's target config validator and its settings (``AWS_*``);
- ``ecs`` / ``alb`` / ``taskdefs``: the ECS target, the listener's weighted forward, task
  definition revisions derived from a service's current one;
- ``lambdas``: the Lambda alias target; ``route53``: the weighted-records target.

May import ``integrations.base``, boto3/botocore and (in ``config.settings_options`` only, at call
time) ``django.conf.settings``; never ``releases`` or ``strategies``. See docs/aws.md.
"""
