"""The SDK-facing endpoints: Unleash's client API (``unleash``) and the OpenFeature Remote
Evaluation Protocol (``ofrep``), mounted by ``urls``. Plain Django views (no session, no CSRF:
SDK tokens authenticate), each answering from ``flags.state``'s cached document.
May import: ``flags.state``, ``flags.sdk``, ``flags.engine``, ``flags.models``.
"""
