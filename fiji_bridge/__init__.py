"""Fiji / ImageJ bridge over the focus core (in progress)."""
