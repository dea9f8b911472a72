"""The kubernetes provider: slots as Deployments on a cluster, traffic through a router there.

- ``config`` — a target's config, checked path by path; the provider's settings (kubeconfig)
  and its capabilities per traffic router
- ``client`` — the official ``kubernetes`` client per cluster (a kubeconfig context or the pod's
  service account), every call with an explicit timeout, its errors as ``IntegrationError``
- ``manifests`` — the objects the provider writes (slot Deployments and Services), pure
- ``pods`` — a slot's status from its Deployment and pods
- ``routers`` — what every router does (the preview Service, the routing annotation) and the
  service-selector router; ``gateway``, ``nginx``, ``istio`` — the weighted routers
- ``analysis`` — ready-made analysis templates for ingress-nginx's and Istio's request metrics
- ``jobs`` — a job metric's measurement as a batch/v1 Job (created, read, deleted)
- ``target`` — ``KubernetesTarget`` (the ``Target`` protocol)

May import: ``integrations.base``, the ``kubernetes`` client, the standard library, and Django's
settings (only in ``config.settings_options``). Never ``releases`` or ``strategies``.
"""
