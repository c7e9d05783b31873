"""Enrollment rules with no I/O: plan periods, and the enrollments a paid order yields."""
