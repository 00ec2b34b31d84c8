"""Corpora that install offline, written as inputs for `weft curate`: the emoji corpus
(`weft data emoji`, which `weft quality` measures the models on) and the emoji drawings with
planted near-duplicate copies that image near-dedup is measured on. Builds on weft.curate
(its shard writer, its image hashes); no stage imports it."""
