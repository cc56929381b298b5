"""Admins: users and roles, webhooks and deliveries, jobs, orders, refunds and
revenue."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
