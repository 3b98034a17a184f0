"""Actions about addresses: where they are and who owns them, from offline data only."""
