"""The tamper-evident audit trail: who did what, from which channel, in a hash chain.

``chain`` writes and verifies it (:func:`record` inside every action's transaction,
:func:`verify` for ``manage.py audit verify``, :func:`export` for the JSON-lines download); the
rows are ``releases.models.AuditEvent`` and ``AuditChainHead``. The audit page is
``releases.web.audit``. ``checkpoints`` anchors the chain outside the database (HMAC-signed
heads in a file or an S3 bucket; ``tasks`` exports them on a schedule). Callers use this
package's names: ``audit.record(actor, action, obj)``.
May import: ``releases.models``, ``releases.actors`` (and boto3, celery). Nothing above them.
"""

from releases.audit.chain import (
    GENESIS,
    HEAD,
    Verdict,
    content,
    digest,
    export,
    plain,
    record,
    verify,
)

__all__ = ["GENESIS", "HEAD", "Verdict", "content", "digest", "export", "plain", "record", "verify"]
