"""``python -m nameko`` is the ``nameko`` command."""

from nameko.cli.main import main

if __name__ == "__main__":
    main()
