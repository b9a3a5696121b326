"""The models a fresh machine trains for what it serves, once per content: which model `auto` names (``keys``),
how far its training has come (``progress``), and the training tasks `shopray serve` starts (``run``)."""
