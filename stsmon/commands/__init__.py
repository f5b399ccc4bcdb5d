"""One module per ``stsmon`` command; each defines a click command named ``command``."""
