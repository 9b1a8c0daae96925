"""Analytics, a layer above the teams: reports that read the teams' published contracts.

The per-strategy tearsheet and the strategy leaderboard (over ``backtest_kpis``, the backtest
tables and ``approvals``) and the features' information coefficient (over ``features`` and
``labels``). Nothing in the chain imports analytics; analytics imports the chain.
"""
