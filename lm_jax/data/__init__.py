"""Text in, integer arrays out: corpora, vocabularies and batches."""
