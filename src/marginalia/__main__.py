"""``python -m marginalia`` is the ``marginalia`` command."""

from .cli import main

if __name__ == "__main__":
    main()
