"""sora-bot's core: everything that does not speak Slack."""
