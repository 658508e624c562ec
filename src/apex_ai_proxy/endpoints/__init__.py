"""Client-facing API families served next to the core chat routes (gemini.py: Google's API)."""
