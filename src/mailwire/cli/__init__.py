"""Command line: `mailwire serve`, `tokens`, `encrypt` and friends.

A thin shell over the runtime and services: parse arguments, build `Settings`,
call one service, print the result. May import everything below it.
"""
