"""Tests of the notification channels: SMS through Twilio, Web Push, FCM."""
