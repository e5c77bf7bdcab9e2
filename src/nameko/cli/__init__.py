"""The ``nameko`` command line (`nameko run`, `shell`, `show-config`, `test`)."""
