"""Who may do what, and when: roles, approvals, freezes, API tokens, sign-in security.

- ``policy``: roles per environment (and service), what each action needs, what a user (and
  their token's scopes) may see and do; ``require`` is called by every action;
- ``approvals``: approval policies, a deployment's approval status, canary step gates;
- ``freezes``: the freeze windows in force for a target, and promotion holds;
- ``tokens``: creating, checking and revoking API tokens (hashed, scoped, expiring);
- ``security``: throttled sign-in, security headers for every response.

The freeze-window maths is ``releases.models.schedule`` (pure). May import: ``releases.models``,
``releases.audit``, ``releases.actors``, ``releases.errors``. Never actions, the web or the API.
"""
