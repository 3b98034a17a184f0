"""Storage: SQLAlchemy 2.0 models and the queries; nothing else talks SQL."""
