"""The command line: entry point, gevent patching, commands, config files."""
