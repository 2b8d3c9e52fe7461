"""`make bench`: sseserver measured side by side with minimal peers."""
