"""Reports people and CI systems read: ``report.html``, ``MODEL_CARD.md`` and ``junit.xml``.

All three render the typed report (:class:`compress_gate.gate.schema.Report`; a loaded
report.json is validated into one first); see ``docs/reports.md``
for what each figure and table shows and how to read it.
"""

from compress_gate.report.html import render_html
from compress_gate.report.junit import write_junit
from compress_gate.report.model_card import write_model_card

__all__ = ["render_html", "write_junit", "write_model_card"]
