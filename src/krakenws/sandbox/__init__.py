"""The local Kraken look-alike exchange: a pure matching engine plus thin I/O shells."""
