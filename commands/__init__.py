"""Command handlers: load → decide → append, one plain function per intention."""
