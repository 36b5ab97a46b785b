"""photoguard: privacy guard for the photos a primary school shares."""

__version__ = "0.1.0"
