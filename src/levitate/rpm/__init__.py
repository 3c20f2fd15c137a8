"""The RPM format: version comparison, headers, payloads, signatures.

Shared by leviso (building the live image) and recipe (installing Rocky packages by name).
"""
