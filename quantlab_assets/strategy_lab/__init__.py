"""Team 3, the strategy lab: YAML strategies validated by a schema, turned into daily targets."""
