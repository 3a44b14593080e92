"""The benchmark: our async server against the guide's thread-per-request "before", side by side."""
