"""Application-layer plumbing shared by the messaging entrypoints."""
