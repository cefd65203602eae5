"""The webhook service's endpoints, a module per provider (and one for our own tracking links);
each gives `routes(service)`."""
