"""Team 5, the portfolio supervisor: risk rules approve or reject each day's targets, with
reasons and risk flags fed back to the strategy lab."""
