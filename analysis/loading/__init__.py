"""Loading: model sources behind one registry, checkpoints, class names, data sets."""
