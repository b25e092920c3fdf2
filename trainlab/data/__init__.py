"""Data: datasets by name, splits, train-only preprocessing, batching, augmentation."""
