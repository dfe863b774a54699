"""Built-in speech tokenizers: HuBERT features + k-means (`hubert`) and a log-mel + k-means baseline (`offline`)."""
