"""Accounts: sign up, email verification, password reset, MFA sign-in step, the profile, avatar, password, MFA, sessions, notification preferences, language, orders and receipts."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
