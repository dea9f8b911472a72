"""Send a notice as an email with ``django.core.mail``: SMTP errors sorted into those worth
retrying (a dropped connection, a 4xx "try later") and those that are not (every recipient
refused, authentication refused, a 5xx)."""

from __future__ import annotations

import smtplib
from html import escape

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import validate_email

from integrations.notify.base import DEFAULT_TIMEOUT, Notice, TransportError


def bodies(notice: Notice) -> tuple[str, str]:
    lines = [notice.title, "", notice.text, ""]
    lines += [f"{k}: {v}" for k, v in notice.facts()]
    if notice.history:
        lines += ["", "What happened:"] + [f"- {h}" for h in notice.history]
    if notice.url:
        lines += ["", notice.url]
    rows = "".join(
        f"<tr><th align='left'>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in notice.facts()
    )
    link = f"<p><a href='{escape(notice.url)}'>Open in Switchyard</a></p>" if notice.url else ""
    html = f"<h2>{escape(notice.title)}</h2><p>{escape(notice.text)}</p><table>{rows}</table>{link}"
    return "\n".join(lines).strip() + "\n", html


class EmailTransport:
    label = "Email"
    SECRETS: tuple[str, ...] = ()
    CONFIG = {"to": "list of recipient addresses", "from": "sender (default DEFAULT_FROM_EMAIL)"}

    @classmethod
    def validate(cls, config: dict, secrets: dict) -> list[tuple[str, str]]:
        problems = [
            (f"config.{k}", "is not a known setting") for k in config if k not in cls.CONFIG
        ]
        to = config.get("to")
        if not isinstance(to, list) or not to:
            return [*problems, ("config.to", "must be a non-empty list of addresses")]
        for i, address in enumerate(to):
            try:
                validate_email(address)
            except (ValidationError, TypeError):
                problems.append((f"config.to[{i}]", "is not an email address"))
        return problems

    def __init__(self, config: dict, secrets: dict, *, timeout: float = DEFAULT_TIMEOUT):
        self.to = list(config.get("to") or [])
        self.sender = config.get("from") or settings.DEFAULT_FROM_EMAIL
        self.timeout = timeout

    def send(self, notice: Notice, *, ref: dict | None = None, reply: bool = False) -> dict | None:
        text, html = bodies(notice)
        subject = f"[Switchyard] {notice.title}"[:200]
        try:
            connection = get_connection(timeout=self.timeout)
        except TypeError:  # a backend that takes no timeout (locmem, console)
            connection = get_connection()
        message = EmailMultiAlternatives(subject, text, self.sender, self.to, connection=connection)
        message.attach_alternative(html, "text/html")
        try:
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            raise TransportError(
                f"every recipient was refused: {exc.recipients}", permanent=True
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(
                f"the SMTP server refused the login ({exc.smtp_code})", permanent=True
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise TransportError(
                f"the SMTP server answered {exc.smtp_code}: {exc.smtp_error!r}",
                permanent=exc.smtp_code >= 500,
            ) from None
        except (smtplib.SMTPException, OSError) as exc:  # dropped connection, timeout, refused
            raise TransportError(f"could not send through SMTP: {exc}") from None
        return None
