"""The only package that speaks Redis: names, connection, consumer runtime, embedded server,
dead letters, trimming and status queries. Everything else talks to Redis through here."""
