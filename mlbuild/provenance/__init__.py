"""Provenance: what was built, by whom, from what, and whether it still holds.

records.py (the manifest format, build_manifest), parse.py (the one strict parser),
store.py (ManifestStore), views.py (a restore seen through its build; diffs), export.py
(in-toto / DSSE), signing.py (Ed25519; the only `cryptography` import), audit.py +
audit_rules.py + findings.py (`mlbuild audit`, one rule per function), lineage.py, card.py,
reproduce.py + reproduce_stage.py / reproduce_run.py / reproduce_compare.py
(`mlbuild reproduce`, one module per phase).
"""
