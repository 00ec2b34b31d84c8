"""`weft demo`, end to end on embedded defaults: its synthetic corpus (`corpus`, also written by
`weft demo-data`) and its tour of the HTTP API (`tour`: one request to each endpoint of the
app it deploys). The top of the package beside weft.cli: it may import any stage, and none
imports it."""
