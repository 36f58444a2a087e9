"""The dashboard's stylesheet, shipped with each page as a hidden HTML widget."""

from __future__ import annotations

import ipywidgets as widgets


def style_widget() -> widgets.HTML:
    """Return the page's stylesheet as a (hidden) HTML widget."""
    w = widgets.HTML(value=f"<style>{_CSS}</style>")
    w.add_class("wb-style")
    return w


_CSS = """
.wb-page { max-width: 1200px; margin: 0 auto; font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; }
.wb-navbar { background:#111827; border-radius: 8px; margin-bottom: 8px; padding: 0 12px 0 0; }
.wb-nav { display:flex; align-items:center; gap: 4px; padding: 8px 12px; }
.wb-nav a { color:#d1d5db; text-decoration:none; padding: 6px 12px; border-radius: 6px; font-weight:500; }
.wb-nav a:hover { background:#374151; color:#fff; }
.wb-nav a.wb-active { background:#2563eb; color:#fff; }
.wb-nav .wb-brand { color:#fff; font-weight:700; margin-right: 16px; }
.wb-heartbeat { margin-left:auto; flex: 0 0 auto; }
.wb-hb { display:inline-block; padding: 4px 10px; border-radius: 999px; font-size: 13px; font-weight:600; }
.wb-hb-ok { background:#dcfce7; color:#166534; }
.wb-hb-stale { background:#fee2e2; color:#991b1b; }
.wb-hb-unknown { background:#fef3c7; color:#92400e; }
.wb-mode { display:inline-block; margin-right: 8px; padding: 4px 10px; border-radius: 999px; font-size: 13px; background:#f3f4f6; color:#374151; }
.wb-mode-open { background:#fef3c7; color:#92400e; }
.wb-page .widget-hbox { gap: 6px; }
.wb-title { font-size: 24px; margin: 8px 0 4px 0; }
.wb-badge { display:inline-block; color:#fff; padding: 2px 8px; border-radius: 999px;
            font-size: 12px; font-weight:600; line-height: 18px; }
.wb-cards { display:flex; gap: 12px; margin: 8px 0; flex-wrap: wrap; }
.wb-card { border:1px solid #e5e7eb; border-radius: 8px; padding: 10px 16px; min-width: 140px; background:#fff; }
.wb-card-value { font-size: 26px; font-weight:700; }
.wb-card-label { color:#6b7280; font-size: 13px; }
.wb-error-box { background:#fef2f2; border:1px solid #fecaca; color:#991b1b; padding: 10px 14px;
                border-radius: 8px; margin: 6px 0; }
.wb-ok-box { background:#f0fdf4; border:1px solid #bbf7d0; color:#166534; padding: 8px 12px; border-radius: 8px; }
.wb-info-box { background:#eff6ff; border:1px solid #bfdbfe; color:#1e3a8a; padding: 10px 14px; border-radius: 8px; }
.wb-field-error { color:#b91c1c; font-size: 13px; }
.wb-muted { color:#6b7280; font-size: 12px; }
.wb-row { border-bottom: 1px solid #e5e7eb; padding: 4px 0; }
.wb-row > .widget-hbox { align-items: center; }
.wb-row-head { font-weight: 600; color:#374151; border-bottom: 2px solid #d1d5db; }
.wb-cell { padding: 0 6px; overflow: hidden; text-overflow: ellipsis; }
.wb-table { border-collapse: collapse; width: 100%; font-size: 13px; }
.wb-table th { text-align:left; border-bottom: 2px solid #d1d5db; padding: 6px; color:#374151; }
.wb-table td { border-bottom: 1px solid #e5e7eb; padding: 4px 6px; vertical-align: top; }
.wb-logs-table td:nth-child(3) { white-space: nowrap; }
.wb-table td.wb-ts { white-space: nowrap; color:#374151; font-family: ui-monospace, monospace; font-size: 12px; }
.wb-table details summary { cursor: pointer; }
.wb-table pre { background:#f9fafb; border:1px solid #e5e7eb; padding: 6px; white-space: pre-wrap;
                word-break: break-word; margin: 4px 0; font-size: 12px; }
.wb-empty { color:#374151; padding: 16px; border: 1px dashed #d1d5db; border-radius: 8px; background:#f9fafb; }
.wb-empty code, .wb-code { display:block; background:#111827; color:#e5e7eb; padding: 10px; border-radius: 6px;
                           white-space: pre-wrap; word-break: break-all; font-size: 12px; margin-top: 6px; }
.wb-section { font-size: 16px; font-weight: 600; margin: 14px 0 4px 0; }
.wb-timeline li { margin: 2px 0; }
.wb-active-list { margin: 4px 0; padding-left: 18px; }
.wb-active-list li { margin: 3px 0; }
.wb-kv th { width: 130px; border-bottom: 1px solid #f3f4f6; padding: 3px 6px; font-weight: 600; }
.wb-kv td { padding: 3px 6px; border-bottom: 1px solid #f3f4f6; }
"""
