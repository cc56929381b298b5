"""Tests of the real-time course chat: Socket.IO events, REST routes, scale-out."""
