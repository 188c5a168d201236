"""What runs under everything: settings, logging, the database pool, the embedded server, the
migrations runner and the advisory lock namespaces."""
