"""MetaCLIP metadata: loading and checking it, the default vocabulary, and building it from WordNet and Wikipedia."""
