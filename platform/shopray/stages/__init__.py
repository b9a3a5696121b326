"""The four stages, one package each: parse, retrieve, rank, diversify.

Each package holds everything that runs for its stage: ``spec.py`` declares
it (``shopray.graph.StageSpec``), ``stage.py`` is the plain stage class,
and ``deployment.py``, where there is one, its Serve deployment.
"""
