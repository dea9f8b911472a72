"""Email through Django's email backend (SMTP settings from the environment: ``EMAIL_HOST``,
``EMAIL_PORT``, ``EMAIL_HOST_USER``, ``EMAIL_HOST_PASSWORD``, ``EMAIL_USE_TLS``…). A plain-text
and an HTML part per notice. May import: ``integrations.notify.base``, ``django.core.mail``,
``django.conf``.
"""
