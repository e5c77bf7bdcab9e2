"""Talk to services from code that is not a service."""
