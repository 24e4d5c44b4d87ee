"""The `ubpkt` command line (click), a thin layer over the ubpkt library."""
