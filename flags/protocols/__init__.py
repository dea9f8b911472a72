"""The SDK-facing endpoints: Unleash's client API (``unleash``) and frontend API
(``frontend``), the OpenFeature Remote Evaluation Protocol (``ofrep``) and the experiment events
(``experiments``), mounted by ``urls``. Plain Django views (no session, no CSRF: SDK tokens
authenticate), each answering from ``flags.state``'s cached document (events: into
``flags.experiments``).
May import: ``flags.state``, ``flags.sdk``, ``flags.engine``, ``flags.models``,
``flags.experiments``.
"""
