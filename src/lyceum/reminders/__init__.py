"""Scheduled learner messages: the weekly progress digest, due-soon reminders and
inactivity nudges, sent through the notifications domain by periodic jobs."""
