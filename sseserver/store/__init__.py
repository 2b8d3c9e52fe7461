"""Where a generation's frames live: the contract (base.py) and its backends."""
