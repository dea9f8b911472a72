"""The local provider: a fleet agent running real processes behind weighted routers on one machine.

- ``agent`` — the agent process (``python -m integrations.local.agent``), ``main(argv)``
- ``control`` — its control API; ``validation`` — the API's request bodies
- ``fleet`` — targets (slots, routing, counters, routers) and the saved desired state
- ``slots`` — N replicas of one release, declaratively; ``instances`` — one process, its health
  checks and drain; ``children`` — spawning and stopping child processes
- ``router`` — the reverse proxy (a main and a preview router per target); ``targeting`` — the
  slot a request asks for (header/cookie overrides, sticky user keys); ``balancing`` — which
  instance serves a request
- ``stats`` — counters and latency histograms, as Prometheus text and JSON
- ``artifacts``, ``faults``, ``durations`` — what an instance runs; ``sample_app`` — the default app
- ``target`` — ``LocalTarget`` (the ``Target`` protocol over the API); ``config`` — its config check
- ``process`` — ``start_agent()`` for tests, benchmarks and the demo; ``traffic`` — steady
  client traffic through a router, for end-to-end tests and benchmarks
"""
