"""pingcheck: asks a service whether it is up, and logs the answer."""
