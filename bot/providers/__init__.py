"""Video providers behind one contract (`bot.ports.VideoProvider`), and the registry that builds them."""
