"""Loaded by Python subprocesses of the tests (via PYTHONPATH): no network but loopback."""

import netguard_impl

netguard_impl.install()
