"""The ground floor every package imports: settings and logging."""
