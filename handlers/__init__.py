"""The thin Slack edge: listeners, Block Kit builders and the Slack publisher."""
