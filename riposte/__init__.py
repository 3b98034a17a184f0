"""Riposte: automated incident response for AWS."""
