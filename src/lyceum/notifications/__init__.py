"""Notifications: the in-app centre, preferences, channel deliveries, announcements."""
