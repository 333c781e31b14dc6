"""The remote repository: objects and the event log on S3-compatible object storage."""
