"""Alerting: the pure decision (``decide``), the evaluator over the catalog and the lake
(``evaluate``) and its incident writes (``incidents``), the webhook outbox sender
(``notify``), payloads and signatures (``payload``), replays over past data
(``backtest``), the scheduled notebook run (``run``) and what the CLI prints (``text``).
"""
