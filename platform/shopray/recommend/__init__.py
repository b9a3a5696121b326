"""Recommendations (POST /recommend): like a product, for a session, bought together, popular."""
