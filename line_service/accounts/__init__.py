"""Rider and driver accounts: sign-in by a code texted to the number, bearer tokens."""
