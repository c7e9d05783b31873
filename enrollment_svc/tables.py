"""enrollment_svc's tables in its schema `enrollment` (migrations/enrollment/), for SQLAlchemy."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, Table, Text

from common.plumbing import Id, Stamp, plumbing_tables

SCHEMA = "enrollment"

metadata = MetaData()

enrollments = Table(
    "enrollments", metadata,
    Column("enrollment_id", Id, primary_key=True),
    Column("order_token", Id, nullable=False),
    Column("line_no", Integer, nullable=False),  # UNIQUE (order_token, line_no): one enrollment per order line
    Column("user_id", Id, nullable=False),
    Column("internship_id", Id, nullable=False),
    Column("plan_id", Id, nullable=False),
    Column("status", Text, nullable=False),
    Column("starts_at", Stamp, nullable=False),
    Column("ends_at", Stamp, nullable=False),
    Column("created_at", Stamp),
    schema=SCHEMA,
)

plumbing = plumbing_tables(metadata, SCHEMA)  # outbox, audit_log, dead_letters
