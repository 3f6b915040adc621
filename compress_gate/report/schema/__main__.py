"""``python -m compress_gate.report.schema``: regenerate the shipped schema files from the typed report."""

from compress_gate.report.schema import SCHEMA_FILES, schema_sha256, schema_text

for target in SCHEMA_FILES:
    target.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {target} (sha256 {schema_sha256()})")
