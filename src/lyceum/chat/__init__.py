"""Real-time course chat: rooms, messages, presence and moderation over Socket.IO."""
