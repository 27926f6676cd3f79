"""Arrow schemas, HDF5 layouts, keypoint layouts and schema versions of affectzoo shards."""
