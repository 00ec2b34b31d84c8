"""Ray Jobs: a spec sent to a cluster as the same `weft` command, through Ray's job submission
API, and followed there (`kinds` says which command runs a spec, `submit` packs and sends it,
`follow` lists, reports, streams and stops jobs; `weft.cli.job_entry` starts the command
inside the job).

Above every stage and beside the command line: it imports no stage, so the Serve ingress
submits training jobs through it too."""
