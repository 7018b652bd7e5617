"""The command line: argument parsing, operator commands, the demo."""
