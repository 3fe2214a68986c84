"""The sans-I/O core of Kraken WebSocket API v1: messages, codec, order book, session state.

Nothing in this package opens a socket, starts a task or reads a clock: it imports only the
standard library and msgspec (a test enforces this).
"""
