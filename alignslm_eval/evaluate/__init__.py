"""Running tasks: likelihood tasks (audio -> units -> log-likelihoods -> choices), generation tasks (prompts ->
samples -> wavs -> transcripts -> scores) and the on-disk store of sampled continuations they and training share."""
