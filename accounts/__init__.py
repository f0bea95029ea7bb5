"""Users, authentication, API keys and two-factor."""
