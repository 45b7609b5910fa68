"""Operator commands that talk to AWS or the cluster at run time (`make preflight`, ...).

Never imported by app.py: synth needs no credentials and no network, these do.
"""
