"""``python -m localstudio.standin``: the stand-in's server process (see server.py)."""

from .server import main

main()
