"""Views of decoded records: output formats (:mod:`.output`), display filters (:mod:`.filter`)
and capture statistics (:mod:`.stats`)."""
