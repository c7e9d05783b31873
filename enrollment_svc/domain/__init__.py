"""Enrollment rules with no I/O: plan periods and the captured-payment event."""
