"""Actions: one class per action, registered by name in ``actions.registry``."""
