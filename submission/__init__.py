"""What `submit.py` uses: the bundle writer and checker, and the fresh-process probe."""
