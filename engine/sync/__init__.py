"""The sync engine: tasks that move bars between the source, the cache, the backups and the remote."""
