"""Alerting: the pure decision (``decide``), the evaluator over the catalog and the lake
(``evaluate``), the webhook outbox sender (``notify``), payloads and signatures
(``payload``), replays over past data (``backtest``) and the scheduled notebook run (``run``).
"""
