"""The runtime layer: extensions, workers, containers, runners."""
