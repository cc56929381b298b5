"""Where notifications go beyond the inbox: a verified phone (SMS), browser push subscriptions (Web Push) and mobile devices (FCM)."""
