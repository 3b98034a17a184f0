"""Actions that act on AWS, and the one client factory they share."""
