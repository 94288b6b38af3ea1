"""The development kit: a fake Slack workspace, a simulator that plays its users, and the scripted demo."""
