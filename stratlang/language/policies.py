"""The choices a user makes about awkward data, named once for the spec, the API and the
command line."""

MISSING_POLICIES = ("error", "drop")  # `missing POLICY`: rows missing a value the model reads
UNSEEN_POLICIES = ("error", "common", "hub")  # predict(unseen=…): a stratum value not a node
