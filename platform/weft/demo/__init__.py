"""`weft demo`, end to end on embedded defaults: its flow (`flow`: corpus, curation, training,
sweeps, promotions, index, tour, in order), its synthetic corpus (`corpus`, also written by
`weft demo-data`, and by tests and benchmarks) and its tour of the HTTP API (`tour`: the
champions deployed with a fresh key, one request to each endpoint). The top of the package
beside weft.cli: it may import any stage, and no stage imports it."""
