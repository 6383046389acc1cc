"""Speech synthesizers of the embedded corpus, each a Debian package that needs no download."""
