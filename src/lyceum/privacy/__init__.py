"""A user's own data, downloadable as one zip (`GET /me/export`): each domain hands over
its part through its service, shown by the same rules as its learner-facing routes."""
