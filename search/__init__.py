"""The search: a trial -> a config -> a result, through caser/; pruning; storages; the report."""
