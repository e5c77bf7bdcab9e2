"""Reliability beyond nameko: call deadlines, retries with
broker-side back-off, dead letters and poison-message limits.

Public names are re-exported by `nameko.reliability`; docs/reliability.md
states each guarantee and the test that proves it.
"""
