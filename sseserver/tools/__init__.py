"""The operator's tools: their definitions (`definitions.py`, from --tools FILE), the
handlers the server runs (`handlers.py`), and the loop that runs them between upstream
requests of one reply (`loop.py`). `demo.py` holds the demo provider's two examples."""
