"""Pure core of analytics (no Dagster import): tearsheet statistics and rendering, the
leaderboard, the features' information coefficient."""
