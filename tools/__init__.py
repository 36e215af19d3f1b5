"""Command-line tools around trained agents: evaluate them, record them, ship them.

None of these train, and none import TensorFlow unless a file they are given needs Keras.
"""
