"""The long-running service: scheduled jobs, the queue of sync tasks, monitoring and alerts."""
