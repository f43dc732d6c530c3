"""The embedded slapd: its configuration and its process."""
