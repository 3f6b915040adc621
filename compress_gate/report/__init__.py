"""Reports people and CI systems read: ``report.html``, ``MODEL_CARD.md``, ``junit.xml`` and the
Markdown job summary (``summary.md``); :mod:`compress_gate.report.rerender` renders them all
again from a saved report.json.

The typed report itself lives here too (:mod:`compress_gate.report.schema`): the gate builds
a :class:`~compress_gate.report.schema.Report`, the renderers only read it (a loaded
report.json is validated into one first) and never import the gate; see ``docs/reports.md``
for what each figure and table shows and how to read it.
"""

from compress_gate.report.html import render_html
from compress_gate.report.junit import write_junit
from compress_gate.report.model_card import write_model_card
from compress_gate.report.summary import write_summary_md
from compress_gate.report._tables import largest_ba_increase, largest_increase

__all__ = ["largest_ba_increase", "largest_increase", "render_html", "write_junit", "write_model_card",
           "write_summary_md"]
