"""mltriage's terminal app and command line."""
