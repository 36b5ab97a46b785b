"""The long-running service: watch, intake, health, lock; installation of a school root."""
