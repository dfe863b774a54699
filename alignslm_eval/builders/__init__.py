"""Making spoken benchmarks from text: espeak-ng speech synthesis and the builders of each task's data layout."""
