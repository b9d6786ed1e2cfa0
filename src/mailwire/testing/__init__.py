"""Test rig: launchers for real peers (Dovecot, an SMTP sink, a Mailwire server).

Used by the test suite and by benchmarks; product code never imports it (an
import-linter contract enforces this).
"""
